"""isolate.eval through real scripts over HTTP: results, both forms of bindings, errors with the
code's own position, time limits a caller can catch, and limits no wider than the caller's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.host import isolate
from tests.host.harness import holding
from tests.support import eventually, running_server, settings_for_tests, write_scripts

SCRIPTS = {
    # the code comes in the request body, the bindings in the query
    "run.ts": "// @timeout 3000\n"
              "const { code, bindings, timeout } = req.body;\n"
              "try {\n"
              "  return { value: await isolate.eval(code, bindings, { timeout }) };\n"
              "} catch (e) {\n"
              "  return res.status(422).json({ name: e.name, message: e.message, line: e.line,\n"
              "    column: e.column });\n"
              "}\n",
    "handoff.ts": "return isolate.eval(\n"
                  "  'res.setHeader(\"x-nested\", \"1\");\\n'\n"
                  "  + 'return res.status(201).json({ method: req.method, id: metadata.parameters.id,'\n"
                  "  + ' body: req.body, q: req.query.q })', [req, res, fetch]);\n",
    "named.ts": "return isolate.eval('return { path: req.path, n }', { req, n: 7 });\n",
    "short.ts": "// @timeout 400\n"
                "const t = Date.now();\n"
                "try { await isolate.eval('await new Promise(r => setTimeout(r, 5000))'); }\n"
                "catch (e) { return { name: e.name, message: e.message, ms: Date.now() - t }; }\n",
    "deep.ts": "const code = 'return isolate.eval(code, { code })';\n"
               "try { return await isolate.eval(code, { code }); }\n"
               "catch (e) { return res.status(422).json({ name: e.name, message: e.message }); }\n",
    "ai-nested.ts": "try { return await isolate.eval('return generateText({ prompt: \"x\" })'); }\n"
                    "catch (e) { return res.status(422).json({ message: e.message }); }\n",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root: Path = tmp_path_factory.mktemp("isolate")
    write_scripts(root / "scripts", SCRIPTS)
    return root


@pytest.fixture(scope="module")
def base(root: Path) -> Iterator[str]:
    with running_server(["--scripts", str(root / "scripts"), "--data", str(root / "data")]) as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c


def run(client: httpx.Client, code: str, bindings: object = None, timeout: int | None = None
        ) -> httpx.Response:
    return client.post("/run", json={"code": code, "bindings": bindings, "timeout": timeout})


def test_the_codes_return_value_comes_back(client: httpx.Client) -> None:
    assert run(client, "return { sum: 1 + 2 }").json() == {"value": {"sum": 3}}
    assert run(client, "return 'text'").json() == {"value": "text"}
    assert run(client, "module.exports = () => [1, 2]").json() == {"value": [1, 2]}


def test_typescript_is_accepted(client: httpx.Client) -> None:
    code = "const n: number = 40;\nconst f = (x: number): number => x + 2;\nreturn f(n);"
    assert run(client, code).json() == {"value": 42}


def test_object_bindings_become_the_codes_variables(client: httpx.Client) -> None:
    r = run(client, "return { a: a * 2, who: user.name, kinds: typeof list }",
            {"a": 21, "user": {"name": "ada"}, "list": [1]})
    assert r.json() == {"value": {"a": 42, "who": "ada", "kinds": "object"}}


def test_a_binding_that_cannot_be_a_variable_is_refused(client: httpx.Client) -> None:
    r = run(client, "return 1", {"not-a-name": 1})
    assert r.status_code == 422
    assert r.json()["name"] == "IsolateError"
    assert "'not-a-name' cannot be a variable name" in r.json()["message"]


def test_the_array_form_gives_the_code_the_callers_req_and_res(client: httpx.Client) -> None:
    r = client.post("/handoff?q=7", json={"hello": "world"})
    assert r.status_code == 201
    assert r.headers["x-nested"] == "1"
    assert r.json() == {"method": "POST", "body": {"hello": "world"}, "q": "7"}


def test_a_named_req_becomes_the_codes_own(client: httpx.Client) -> None:
    assert client.get("/named").json() == {"path": "/named", "n": 7}


def test_a_syntax_error_rejects_with_the_codes_line_and_column(client: httpx.Client) -> None:
    r = run(client, "const a = 1;\nconst b = ;\nreturn a;")
    assert r.status_code == 422
    assert r.json()["name"] == "SyntaxError"
    assert (r.json()["line"], r.json()["column"]) == (2, 11)
    # the same with bindings, which put a line above the code
    r = run(client, "const a = 1;\nconst b = ;\nreturn a;", {"x": 1})
    assert (r.json()["line"], r.json()["column"]) == (2, 11)


def test_a_thrown_error_rejects_with_its_name_message_and_position(client: httpx.Client) -> None:
    r = run(client, "const o = null;\n\n  o.field;", {"unused": 0})
    assert r.status_code == 422
    assert r.json()["name"] == "TypeError"
    assert "cannot read property 'field' of null" in r.json()["message"]
    assert r.json()["line"] == 3


def test_a_timeout_inside_rejects_in_the_caller_which_answers(client: httpx.Client) -> None:
    t = time.monotonic()
    r = run(client, "while (true) {}", timeout=300)
    assert time.monotonic() - t < 2.5
    assert r.status_code == 422
    assert r.json()["name"] == "TimeoutError"
    assert "time limit of 300 ms" in r.json()["message"]


def test_a_nested_run_ends_before_its_caller_does(client: httpx.Client) -> None:
    r = client.get("/short")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "TimeoutError"
    # 400 ms less 10 % (at least 50 ms): the caller keeps time to answer
    assert 300 <= body["ms"] < 400, body


def test_nesting_is_bounded_in_depth(client: httpx.Client) -> None:
    r = client.get("/deep")
    assert r.status_code == 422
    assert "nested as deep as allowed (WEXEC_ISOLATE_MAX_DEPTH)" in r.json()["message"]


def test_the_code_holds_no_more_than_its_callers_grants(client: httpx.Client) -> None:
    r = client.get("/ai-nested")
    assert r.status_code == 422
    assert "not granted ai" in r.json()["message"]


def test_what_the_code_logs_goes_to_the_callers_log(client: httpx.Client, root: Path) -> None:
    assert run(client, "console.warn('from inside', 42); return 1").json() == {"value": 1}
    log = root / "data" / "logs" / "default-1.log"
    eventually(lambda: log.exists() and "[isolate.eval] from inside 42" in log.read_text())


async def test_evaluations_past_the_per_request_cap_are_refused() -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, isolate_max_evals=2)
    with holding(isolate.UNIT, settings=settings) as h:
        r = await h.run("const out = [];\n"
                        "for (let i = 0; i < 3; i++) {\n"
                        "  try { out.push(await isolate.eval('return ' + i)); }\n"
                        "  catch (e) { out.push(e.name + ': ' + e.message); }\n"
                        "}\nreturn out;")
    assert json.loads(r.body) == [0, 1, ("IsolateError: isolate.eval refused: this request already "
                                  "made 2 evaluations, the cap (WEXEC_ISOLATE_MAX_EVALS)")]
