"""Secrets from magic comments reach nobody who must not see them (issue 10, defect 8).

One real `wexec serve --tenants-root` for the module, tenant alice/1. The class: a `@token` or
`@ai-key` value never appears in an answer, the request log or the server's own output, whatever
state the script is in; a broken `@token` script shows its errors only to a caller presenting
the token; credentials are taken out of the request however they were spelled.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import eventually, running_server, write_atomically, write_scripts

TOKEN = "tk-Alpha7-SECRET"
PHRASE = "my zebrahush words"
EQ_SECRET = "EqSecret-31"
TWICE = ("TwiceOne-8", "TwiceTwo-9")
AI_PHRASE = "shared quokkahush words"
COMPILE_TOKEN = "CompileTok9"
AI_KEY = "AiKey42x"
SPLIT_KEY = "Zq7-Wk5"  # esbuild stops at the first word: `found "Zq7"`
GOOD_TOKEN = "GoodTok5"
ENV_SECRET = "envsecret-77"
DISABLED_TOKEN = "DisabledTok3"
HOT_TOKEN = "HotTok77"
WRONG = "WrongGuess-0"
SECRETS = [TOKEN, PHRASE, EQ_SECRET, *TWICE, AI_PHRASE, COMPILE_TOKEN, AI_KEY, "Zq7", GOOD_TOKEN,
           ENV_SECRET, DISABLED_TOKEN, HOT_TOKEN, WRONG]
HOST = {"host": "alice-1.example.com"}

ALICE = {
    "echo.ts": (
        f"// @token {TOKEN}\n// @log-level debug\n// @log-request-body\n"
        "console.log('saw', req.url, JSON.stringify(metadata.query), JSON.stringify(req.headers));\n"
        "return { url: req.url, query: metadata.query, headers: req.headers };\n"
    ),
    "malformed.ts": f"// @token {PHRASE}\nreturn 'served';\n",
    "malformed-eq.ts": f"// @token={EQ_SECRET}\nreturn 'served';\n",
    "malformed-case.ts": f"// @TOKEN {EQ_SECRET}\nreturn 'served';\n",
    "twice.ts": f"// @token {TWICE[0]}\n// @token {TWICE[1]}\nreturn 'served';\n",
    "ai-phrase.ts": f"// @ai-key {AI_PHRASE}\nreturn 'served';\n",
    "compile.ts": f"// @token {COMPILE_TOKEN}\nconst x = 1 {COMPILE_TOKEN};\nreturn x;\n",
    "compile-ai.ts": f"// @ai-key {AI_KEY}\nconst y = 2 {AI_KEY};\nreturn y;\n",
    "compile-split.ts": f"// @ai-key {SPLIT_KEY}\nconst y = 2 {SPLIT_KEY};\nreturn y;\n",
    "bad-magic.ts": f"// @token {GOOD_TOKEN}\n// @mode wrker\nreturn 1;\n",
    "bad-env.ts": f"// @env 1BAD={ENV_SECRET}\nreturn 1;\n",
    "env-spaces.ts": f"// @env GOOD = {ENV_SECRET}\n// @timeout soon\nreturn 1;\n",
    "disabled.ts": f"// @token {DISABLED_TOKEN}\n// @enabled false\nreturn 1;\n",
    "hot.ts": f"// @token {HOT_TOKEN}\n// @log-level debug\nreturn 'first version';\n",
}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("secrets")
    root, data = base / "tenants", base / "data"
    write_scripts(root / "alice" / "1", ALICE)
    write_scripts(root / "default" / "1", {"hello.ts": "return 'hi';\n"})
    return {"root": root, "data": data, "output": base / "server.out"}


@pytest.fixture(scope="module")
def client(dirs: dict[str, Path]) -> Iterator[httpx.Client]:
    args = ["--tenants-root", str(dirs["root"]), "--data", str(dirs["data"])]
    env = {"WEXEC_RELOAD_INTERVAL_MS": "100"}
    with running_server(args, env, output_path=dirs["output"]) as url, \
            httpx.Client(base_url=url, timeout=10, headers=HOST) as c:
        yield c


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    assert "hush" not in text  # not even a word of a secret that is several words


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"user:{password}".encode()).decode()


# -- credentials are stripped however they are spelled ----------------------------------------

ENCODED_DASH = TOKEN.replace("-", "%2D")


@pytest.mark.parametrize(("query", "headers"), [
    (f"%74oken={TOKEN}", {}),
    (f"TOKEN={TOKEN}", {}),
    (f"a=1&ToKeN={TOKEN}&b=2", {}),
    (f"to%6Ben={ENCODED_DASH}", {}),
    (f"token={WRONG}&token={TOKEN}", {}),
    (f"token={TOKEN}&%54OKEN={WRONG}", {}),
    (f"token={TOKEN}", {"x-token": WRONG}),
    (f"tOkEn={WRONG}", {"authorization": f"bearer {TOKEN}"}),
    ("", {"authorization": _basic(TOKEN)}),
    (f"token={WRONG}", {"authorization": _basic(TOKEN), "x-token": WRONG}),
    ("", {"X-Token": TOKEN}),
])
def test_accepted_credentials_never_reach_the_script(
    client: httpx.Client, query: str, headers: dict[str, str]
) -> None:
    r = client.get(f"/echo?{query}&keep=a+b" if query else "/echo?keep=a+b", headers=headers)
    assert r.status_code == 200, r.text
    _no_secret(r.text)
    seen = r.json()
    assert seen["query"] == {"a": "1", "b": "2", "keep": "a b"} if "a=1" in query else \
        seen["query"] == {"keep": "a b"}
    assert "oken" not in seen["url"].lower().replace("%6b", "k")
    assert seen["url"].endswith("keep=a+b")  # what is not a credential is left as it came
    assert not {"authorization", "x-token"} & set(seen["headers"])


@pytest.mark.parametrize("query", [
    f"%74oken={WRONG}", f"TOKEN={WRONG}", f"token+={TOKEN}", f"tokens={TOKEN}", "",
])
def test_anything_else_is_refused(client: httpx.Client, query: str) -> None:
    r = client.get(f"/echo?{query}")
    assert r.status_code == 401
    _no_secret(r.text)


# -- a broken script's secrets ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/malformed", "/malformed-eq", "/malformed-case", "/twice"])
def test_an_unreadable_token_shows_nobody_anything(client: httpx.Client, path: str) -> None:
    for attempt in ({}, {"x-token": PHRASE}, {"x-token": EQ_SECRET}, {"x-token": TWICE[0]}):
        r = client.get(path, headers=attempt)
        assert r.status_code == 500, r.text  # never served, never as a script without a token
        body = r.json()
        assert body["error"] == "invalid_magic_comments"
        assert "@token" in body["message"] and "problems" not in body
        _no_secret(r.text)


def test_magic_comment_errors_never_quote_a_value(client: httpx.Client) -> None:
    for path, line in (("/ai-phrase", 1), ("/bad-env", 1), ("/env-spaces", 2)):
        r = client.get(path)
        assert r.status_code == 500
        body = r.json()
        assert body["error"] == "invalid_magic_comments" and body["line"] == line
        _no_secret(r.text)


def test_compile_errors_of_a_token_script_are_for_token_holders(client: httpx.Client) -> None:
    for attempt in ({}, {"x-token": WRONG}, {"authorization": f"Bearer {COMPILE_TOKEN}x"}):
        r = client.get("/compile", headers=attempt)
        assert r.status_code == 401, r.text
        _no_secret(r.text)
    for path, shown in (("/compile", {"x-token": COMPILE_TOKEN}),
                        ("/compile", {"authorization": _basic(COMPILE_TOKEN)}),
                        (f"/compile?TOKEN={COMPILE_TOKEN}", {})):
        r = client.get(path, headers=shown)
        assert r.status_code == 500
        body = r.json()
        assert body["error"] == "compile_error" and body["line"] == 2
        assert "[REDACTED]" in body["message"]  # esbuild quoted the token next to the error
        _no_secret(r.text)


def test_magic_errors_of_a_token_script_are_for_token_holders(client: httpx.Client) -> None:
    assert client.get("/bad-magic").status_code == 401
    r = client.get(f"/bad-magic?%74oken={GOOD_TOKEN}")
    assert r.status_code == 500
    assert r.json()["problems"][0]["line"] == 2
    _no_secret(r.text)


@pytest.mark.parametrize("path", ["/compile-ai", "/compile-split"])
def test_a_compile_error_never_quotes_an_ai_key_or_part_of_it(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 500 and r.json()["error"] == "compile_error"
    assert r.json()["line"] == 2 and "[REDACTED]" in r.text
    _no_secret(r.text)


def test_a_disabled_token_script_says_nothing_of_its_token(client: httpx.Client) -> None:
    r = client.get("/disabled")
    assert r.status_code == 404
    _no_secret(r.text)


def test_the_server_log_of_a_rejected_version_has_no_secret(
    client: httpx.Client, dirs: dict[str, Path]
) -> None:
    assert client.get("/hot", headers={"x-token": HOT_TOKEN}).text == "first version"
    hot = dirs["root"] / "alice" / "1" / "hot.ts"
    write_atomically(hot, f"// @token {HOT_TOKEN}\nconst z = 1 {HOT_TOKEN};\n")
    output = dirs["output"]
    eventually(lambda: "keeping the previous version" in output.read_text(), timeout_s=10)
    assert client.get("/hot", headers={"x-token": HOT_TOKEN}).text == "first version"
    assert "[REDACTED]" in output.read_text()


# -- and none of it is written anywhere -----------------------------------------------------

def test_no_secret_in_any_log_or_server_output(client: httpx.Client, dirs: dict[str, Path]) -> None:
    client.get(f"/echo?%74oken={TOKEN}", headers={"x-token": WRONG})
    client.get(f"/echo?TOKEN={WRONG}")
    client.post("/echo", headers={"authorization": _basic(TOKEN)}, content=b"body without secrets")
    log = dirs["data"] / "logs" / "alice-1.log"

    def logged() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    eventually(lambda: sum(e["path"] == "/echo" for e in logged()) >= 15, timeout_s=10)
    text = log.read_text()
    assert "[REDACTED]" in text  # the lines do say where a credential was
    assert any(e.get("console") for e in logged())  # the script's output, which quotes its URL
    _no_secret(text)
    for path in (dirs["data"] / "logs").iterdir():
        _no_secret(path.read_text())
    _no_secret(dirs["output"].read_text())
