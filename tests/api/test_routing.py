"""route/*: resolve, discover and test read the live table the gateway routes with."""

from __future__ import annotations

import httpx

from tests.api.conftest import PREFIX, Server

BOB = {"execId": "7", "subdomain": "bob"}
ROUTES = {
    "r/index.ts": "return 'index';\n",
    "r/users/[id].ts": "return metadata.parameters;\n",
    "r/users/me.ts": "// @description Who am I\nreturn 'me';\n",
    "r/files/[...slug].ts": "return metadata.parameters;\n",
    "r/docs/[[...page]].ts": "return metadata.parameters;\n",
    "r/off.ts": "// @enabled false\nreturn 'off';\n",
}


def write_routes(api: Server) -> None:
    for path, content in ROUTES.items():
        r = api.client.post(f"{PREFIX}/scripts/write",
                            json={"path": path, "content": content, **BOB})
        assert r.status_code == 200, r.text


def resolve(api: Server, path: str, **extra: object) -> dict[str, object]:
    r = api.client.post(f"{PREFIX}/route/resolve", json={"path": path, **BOB, **extra})
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


def test_resolve_answers_what_a_request_would_run(api: Server) -> None:
    write_routes(api)
    cases = {
        "/r/users/42": ("r/users/[id].ts", {"id": "42"}),
        "/r/users/me": ("r/users/me.ts", {}),  # static beats dynamic
        "/r/files/a/b?x=1": ("r/files/[...slug].ts", {"slug": ["a", "b"]}),
        "/r/docs": ("r/docs/[[...page]].ts", {"page": []}),
        "/r": ("r/index.ts", {}),
    }
    for path, (script, params) in cases.items():
        answer = resolve(api, path, method="POST")
        assert answer["matched"] and answer["script"] == script and answer["params"] == params
        assert answer["method"] == "POST"
        served = httpx.get(f"{api.base}{path}", headers={"host": "bob-7.example.com"})
        assert served.status_code == 200 and (not params or served.json() == params)


def test_resolve_explains_what_does_not_answer(api: Server) -> None:
    write_routes(api)
    assert resolve(api, "/r/files")["matched"] is False  # a catch-all needs one segment
    off = resolve(api, "/r/off")
    assert off["matched"] is False and off["script"] == "r/off.ts"
    assert "@enabled false" in str(off["reason"])
    reserved = resolve(api, "/api/v1/exec/health")
    assert reserved["matched"] is False and "management API" in str(reserved["reason"])
    r = api.client.post(f"{PREFIX}/route/resolve", json=BOB)
    assert r.status_code == 422 and r.json()["problems"][0]["where"] == "body.path"


def test_discover_lists_routes_in_precedence_order(api: Server) -> None:
    write_routes(api)
    body = api.client.post(f"{PREFIX}/route/discover",
                           json={"baseDir": "r", "includeMetadata": True, **BOB}).json()
    routes = [(r["route"], r["type"]) for r in body["routes"]]
    assert routes == [("/r", "static"), ("/r/off", "static"), ("/r/users/me", "static"),
                      ("/r/users/[id]", "dynamic"), ("/r/files/[...slug]", "catch-all"),
                      ("/r/docs/[[...page]]", "optional-catch-all")]
    me = next(r for r in body["routes"] if r["script"] == "r/users/me.ts")
    assert me["metadata"]["description"] == "Who am I" and me["served"]
    off = next(r for r in body["routes"] if r["script"] == "r/off.ts")
    assert off["served"] is False
    everything = api.client.post(f"{PREFIX}/route/discover", params=BOB).json()
    assert everything["count"] == len(ROUTES) + 1 and everything["routes"][0]["metadata"] is None


def test_test_explains_a_match_segment_by_segment(api: Server) -> None:
    write_routes(api)
    body = api.client.post(f"{PREFIX}/route/test", json={"url": "http://x/r/users/42", **BOB})
    tested = body.json()
    assert tested["matched"] and tested["script"] == "r/users/[id].ts"
    winner = next(c for c in tested["candidates"] if c["script"] == "r/users/[id].ts")
    assert winner["explanation"] == ["segment 1: 'r' matches", "segment 2: 'users' matches",
                                     "segment 3: [id] takes '42'", "every segment matches"]
    me = next(c for c in tested["candidates"] if c["script"] == "r/users/me.ts")
    assert me["explanation"][-1] == "segment 3: '42' is not 'me'"
    alone = api.client.post(f"{PREFIX}/route/test", json={
        "path": "/shop/a/b", "pattern": "/shop/[[...rest]]", **BOB}).json()
    assert alone["matched"] and alone["params"] == {"rest": ["a", "b"]}
    assert alone["candidates"][0]["script"] is None
    miss = api.client.post(f"{PREFIX}/route/test", json={
        "path": "/shop", "pattern": "/shop/[id]", **BOB}).json()
    assert not miss["matched"]
    assert miss["candidates"][0]["explanation"][-1] == \
        "segment 2: the path ends where [id] needs one"
    bad = api.client.post(f"{PREFIX}/route/test", json={"path": "/x", "pattern": "/[...a]/b"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_pattern"
    assert api.client.post(f"{PREFIX}/route/test", json={}).status_code == 400
