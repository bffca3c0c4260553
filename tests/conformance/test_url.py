"""URL and URLSearchParams against the Web Platform Tests' data, the way WPT's url/ tests use it.

Each test runs every case of one data file in one sandboxed script (harness.py) and the same
runner under Node, whose failures are printed beside ours.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.harness import WPT, check, node_outcome, run_cases, wpt_json

URL_ATTRIBUTES = ("href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash")

# Shared by the runners: a failed case throws with what differed.
EXPECT = """
const same = (what, got, want) => {
  if (got !== want) throw new Error(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
};
const throwsTypeError = (what, f) => {
  let error = null;
  try { f(); } catch (e) { error = e; }
  if (!(error instanceof TypeError)) throw new Error(`${what}: expected a TypeError, got ${error === null ? 'none' : error}`);
};
"""


def data(rel: str) -> Any:
    """A WPT data file; the test is skipped, saying which and where, when the tree lacks it."""
    if not (WPT / rel).is_file():
        pytest.skip(f"WPT data {rel} not found under {WPT} (see tests/conformance/wpt/README.md)")
    return wpt_json(rel)


def run_script(sandbox: Any, source: str) -> Any:
    from runtime.sandbox import Invocation

    artefact = sandbox.compiler.compile_source(source, "url-behaviour.js")
    return json.loads(sandbox.run_sync(artefact, Invocation("GET", "/")).body)


def conformance(sandbox: Any, api: str, runner: str, cases: list[Any]) -> None:
    outcome = run_cases(sandbox, api, EXPECT + runner, cases)
    outcome.node_failed = node_outcome(EXPECT + runner, cases)
    check(outcome)


def test_url_parsing(sandbox: Any) -> None:
    """urltestdata.json as url-constructor, url-origin and url-statics-canparse use it."""
    cases = [c for c in data("url/resources/urltestdata.json") if isinstance(c, dict)]
    runner = f"""
const ATTRIBUTES = {json.dumps(URL_ATTRIBUTES)};
const caseName = (c) => JSON.stringify(c.input) + (c.base === null ? '' : ' against ' + JSON.stringify(c.base));
const runCase = (c) => {{
  const base = c.base === null ? undefined : c.base;
  if (c.failure) {{
    throwsTypeError('new URL', () => new URL(c.input, base));
    same('URL.canParse', URL.canParse(c.input, base), false);
    return;
  }}
  const url = new URL(c.input, base);
  for (const a of ATTRIBUTES) same(a, url[a], c[a]);
  if ('origin' in c) same('origin', url.origin, c.origin);
  if ('searchParams' in c) same('searchParams', url.searchParams.toString(), c.searchParams);
  same('URL.canParse', URL.canParse(c.input, base), true);
}};
"""
    conformance(sandbox, "URL parsing", runner, cases)


def test_url_setters(sandbox: Any) -> None:
    """setters_tests.json: each setter on a parsed URL, then every attribute it names."""
    cases = [
        {"setter": setter, **case}
        for setter, group in data("url/resources/setters_tests.json").items()
        if setter != "comment"
        for case in group
    ]
    runner = """
const caseName = (c) => `${c.setter} = ${JSON.stringify(c.new_value)} on ${c.href}`;
const runCase = (c) => {
  const url = new URL(c.href);
  url[c.setter] = c.new_value;
  for (const [a, want] of Object.entries(c.expected)) same(a, url[a], want);
};
"""
    conformance(sandbox, "URL setters", runner, cases)


HOST_RUNNER = """
const caseName = (c) => `${JSON.stringify(c.input)} (${c.via})`;
const runCase = (c) => {
  if (c.via === 'new URL') {
    if (c.output === null) return throwsTypeError('new URL', () => new URL(`https://${c.input}/x`));
    const url = new URL(`https://${c.input}/x`);
    same('host', url.host, c.output);
    same('hostname', url.hostname, c.output);
    same('pathname', url.pathname, '/x');
    same('href', url.href, `https://${c.output}/x`);
    return;
  }
  const url = new URL('https://x/x');
  url[c.via] = c.input;
  same(c.via, url[c.via], c.output === null ? 'x' : c.output);
};
"""


def test_url_toascii(sandbox: Any) -> None:
    """toascii.json: domain to ASCII through the URL parser and the host and hostname setters."""
    cases = [
        {**c, "via": via}
        for c in data("url/resources/toascii.json")
        if isinstance(c, dict)
        for via in ("new URL", "host", "hostname")
    ]
    conformance(sandbox, "URL toascii", HOST_RUNNER, cases)


def test_url_idna(sandbox: Any) -> None:
    """IdnaTestV2.json (UTS #46's own tests, as WPT filters them): hosts through the parser."""
    cases = [
        {**c, "via": "new URL"}
        for c in data("url/resources/IdnaTestV2.json")
        if isinstance(c, dict) and c["input"] != ""  # an empty host is no URL to test it by
    ]
    conformance(sandbox, "URL IDNA (UTS #46)", HOST_RUNNER, cases)


def test_urlsearchparams_parsing(sandbox: Any) -> None:
    """urlencoded-parser-data.json: application/x-www-form-urlencoded bodies parsed to pairs."""
    runner = """
const caseName = (c) => JSON.stringify(c.input);
const runCase = (c) => same('pairs', JSON.stringify([...new URLSearchParams(c.input)]), JSON.stringify(c.output));
"""
    conformance(sandbox, "URLSearchParams parsing", runner, data("url/resources/urlencoded-parser-data.json"))


def test_urlsearchparams_follows_the_standard(sandbox: Any) -> None:
    """What WPT's urlsearchparams-*.any.js check, as behaviour: constructor forms, encoding,
    sort stability, size, has/delete with a value, and a URL's params kept in sync both ways;
    and util.inspect showing both as Node does."""
    src = r"""
const P = URLSearchParams;
const out = {};
out.forms = [
  new P('?a=1&b=2').toString(), new P([['a', '1'], ['a', '2']]).toString(),
  new P({ a: 'x y', 'é': '~' }).toString(), new P(new P('c=3')).toString(),
  new P(new Map([['m', '1']])).toString(), new P(null).toString(), new P(undefined).toString(),
];
try { new P([['a']]); out.badPair = 'accepted'; } catch (e) { out.badPair = e.name; }
out.encode = new P({ k: "!'()*-._~ +&=%\u00e9\ud83d\ude00" }).toString();
out.lone = new P({ k: '\ud800' }).toString();
out.decoded = [...new P('a=%F0%9F%98&b=%ED%A0%80&c=%F0%9F%98%80')];
const s = new P('z=1&a=2&z=0&a=1&\ufffd=x&\ud83d\ude00=y&\ufb03=z'); s.sort();
out.sorted = [...s.keys()];
const h = new P('a=1&a=2&b=3');
out.has = [h.has('a', '2'), h.has('a', '3'), h.has('b')];
h.delete('a', '1');
out.afterDelete = [h.toString(), h.size];
const u = new URL('https://h.example/p?x=1#f');
u.searchParams.append('y', 'a b');
out.fromParams = u.href;
u.search = '?q=2';
out.fromSearch = [...u.searchParams];
u.searchParams.delete('q');
out.emptied = u.href;
u.href = 'https://h.example/?n=1';
out.fromHref = u.searchParams.get('n');
const live = new P('a=1&b=2&c=3'), seen = [];
for (const [k] of live) { seen.push(k); if (k === 'a') live.delete('b'); }
out.live = seen;
const { inspect } = require('util');
out.shown = [inspect(new URL('https://h.example/?a=1')), inspect(new P('a=1&a=2'))];
return out;
"""
    out = run_script(sandbox, src)
    assert out["forms"] == ["a=1&b=2", "a=1&a=2", "a=x+y&%C3%A9=%7E", "c=3", "m=1", "null=", ""]
    assert out["badPair"] == "TypeError"
    assert out["encode"] == "k=%21%27%28%29*-._%7E+%2B%26%3D%25%C3%A9%F0%9F%98%80"
    assert out["lone"] == "k=%EF%BF%BD"
    # one U+FFFD per maximal invalid subpart; an encoded surrogate is three bytes of nothing
    assert out["decoded"] == [["a", "\ufffd"], ["b", "\ufffd" * 3], ["c", "\U0001f600"]]
    assert out["sorted"] == ["a", "a", "z", "z", "\U0001f600", "\ufb03", "\ufffd"]  # by UTF-16 code units
    assert out["has"] == [True, False, True]
    assert out["afterDelete"] == ["a=2&b=3", 2]
    assert out["fromParams"] == "https://h.example/p?x=1&y=a+b#f"
    assert out["fromSearch"] == [["q", "2"]]
    assert out["emptied"] == "https://h.example/p#f"
    assert out["fromHref"] == "1"
    assert out["live"] == ["a", "c"]
    assert out["shown"][0].startswith("URL { href: 'https://h.example/?a=1', origin: 'https://h.example',")
    assert out["shown"][1] == "URLSearchParams { 'a' => '1', 'a' => '2' }"
