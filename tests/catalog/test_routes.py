"""File-based routing and tenant resolution, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.catalog.routes import RouteError, RouteTable, is_script, route_for, scan
from runtime.catalog.tenants import Tenant, TenantResolver, discover
from runtime.config import Settings

FILES = [
    "index.ts", "about.ts", "blog/index.ts", "blog/[slug].ts", "blog/featured.ts",
    "docs/[...path].ts", "shop/[[...path]].ts", "files/[...rest].ts",
    "files/special/[...rest].ts", "users/[id]/posts.ts", "[lang]/about.ts", "a/[x]/c.ts",
    "[y]/b/[z].ts",
]


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return RouteTable([route_for(f) for f in FILES])


def served(table: RouteTable, path: str) -> tuple[str, dict] | None:
    hit = table.match(path)
    return None if hit is None else (hit[0].rel, hit[1])


@pytest.mark.parametrize(("path", "rel", "params"), [
    ("/", "index.ts", {}),
    ("/about", "about.ts", {}),
    ("/about/", "about.ts", {}),
    ("/blog", "blog/index.ts", {}),
    ("/blog/hello", "blog/[slug].ts", {"slug": "hello"}),
    ("/blog/featured", "blog/featured.ts", {}),  # static beats dynamic
    ("/docs/a", "docs/[...path].ts", {"path": ["a"]}),
    ("/docs/a/b/c", "docs/[...path].ts", {"path": ["a", "b", "c"]}),
    ("/shop", "shop/[[...path]].ts", {"path": []}),
    ("/shop/x/y", "shop/[[...path]].ts", {"path": ["x", "y"]}),
    ("/files/x", "files/[...rest].ts", {"rest": ["x"]}),
    ("/files/special/x", "files/special/[...rest].ts", {"rest": ["x"]}),  # deeper static prefix
    ("/users/42/posts", "users/[id]/posts.ts", {"id": "42"}),
    ("/fr/about", "[lang]/about.ts", {"lang": "fr"}),
    ("/a/b/c", "a/[x]/c.ts", {"x": "b"}),  # a static first segment outranks a dynamic one
    ("/q/b/r", "[y]/b/[z].ts", {"y": "q", "z": "r"}),
    ("/blog/hello%20world", "blog/[slug].ts", {"slug": "hello world"}),
])
def test_route_matches(table: RouteTable, path: str, rel: str, params: dict) -> None:
    assert served(table, path) == (rel, params)


@pytest.mark.parametrize("path", ["/docs", "/nope", "/blog/a/b", "/users/42"])
def test_unmatched_paths(table: RouteTable, path: str) -> None:
    assert served(table, path) is None


def test_dynamic_beats_catch_all() -> None:
    table = RouteTable([route_for("x/[...all].ts"), route_for("x/[one].ts")])
    assert served(table, "/x/1") == ("x/[one].ts", {"one": "1"})
    assert served(table, "/x/1/2") == ("x/[...all].ts", {"all": ["1", "2"]})


def test_file_beats_index_and_ts_beats_js() -> None:
    table = RouteTable([route_for(f) for f in ("a/index.ts", "a.js", "a.ts")])
    assert served(table, "/a") == ("a.ts", {})


@pytest.mark.parametrize("name", ["a/[...x]/b.ts", "a[b].ts", "[a-b].ts"])
def test_bad_route_names_are_refused(name: str) -> None:
    with pytest.raises(RouteError):
        route_for(name)


@pytest.mark.parametrize(("name", "routed"), [
    ("a.ts", True), ("a.js", True), ("a.d.ts", False), ("a.json", False), ("a.md", False),
    ("_helper.ts", False), (".hidden.ts", False), ("a.tsx", False),
])
def test_only_scripts_are_routed(name: str, routed: bool) -> None:
    assert is_script(name) is routed


def test_scan_skips_private_folders(tmp_path: Path) -> None:
    for rel in ("a.ts", "b/c.js", "node_modules/x/index.js", "_lib/util.ts", ".git/x.ts",
                "types.d.ts", "readme.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("return 1")
    found = scan(tmp_path, 100)
    assert sorted(found.found) == ["a.ts", "b/c.js"]
    assert found.skipped == {}


def test_tenants_from_host(tmp_path: Path) -> None:
    for t in ("default/1", "alice/1", "bob/7", "Bad_Name/1"):
        (tmp_path / t).mkdir(parents=True)
    settings = Settings(tenants_root=tmp_path)
    tenants = discover(settings)
    assert sorted(t.name for t in tenants) == ["alice/1", "bob/7", "default/1"]
    resolver = TenantResolver(settings.tenant_host_pattern, tenants)
    assert resolver.resolve("alice-1.localhost:8080").name == "alice/1"
    assert resolver.resolve("bob-7.example.com").name == "bob/7"
    assert resolver.resolve("bob-8.example.com").name == "default/1"  # unknown: default
    assert resolver.resolve("localhost:8080").name == "default/1"
    assert resolver.resolve("127.0.0.1:8080").name == "default/1"


def test_single_tenant_is_the_scripts_folder(tmp_path: Path) -> None:
    assert discover(Settings(scripts=tmp_path)) == [Tenant("default", "1", tmp_path)]
