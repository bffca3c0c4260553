"""Every file the server reads or serves resolves inside its tenant's folder (issue 10, defect 9).

One real `wexec serve --tenants-root` for the module, started with the hostile links already in
place (a link loop among them, which once stopped start-up). Links out of a tenant, to another
tenant or anywhere else, are not served and warned about once; links that stay inside work;
nothing in one tenant's folder stops another tenant or hot reload.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.catalog.confine import MAX_SCRIPT_BYTES, OutsideRoot, read_inside
from runtime.catalog.routes import scan
from tests.support import eventually, running_server, write_atomically, write_scripts

BOB_ENV = "bob-env-SECRET-5"
OUTSIDE_TEXT = "OUTSIDE_CONTENT_42"
ALICE, BOB = {"host": "alice-1.example.com"}, {"host": "bob-1.example.com"}
RELOAD_MS = 100


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("files")
    root, outside = base / "tenants", base / "outside"
    alice, bob = root / "alice" / "1", root / "bob" / "1"
    write_scripts(bob, {
        "secret.ts": f"// @env SECRET={BOB_ENV}\nreturn process.env.SECRET;\n",
        "api/data.ts": "return 'bob data';\n",
    })
    write_scripts(alice, {
        "hello.ts": "return 'alice hello';\n",
        "v1/x.ts": "return 'alice v1 x';\n",
        "swapped.ts": "return 'alice own';\n",
    })
    write_scripts(outside, {"leak.ts": f"const x = 1 {OUTSIDE_TEXT};\n", "ok.ts": "return 1;\n"})
    write_scripts(root / "default" / "1", {"hello.ts": "return 'default';\n"})
    links = {
        "bobs.ts": "../../bob/1/secret.ts",        # another tenant's script, relative
        "bobs-abs.ts": str(bob / "secret.ts"),      # and absolute
        "bobdir": "../../bob/1",                    # another tenant's whole folder
        "leak.ts": str(outside / "leak.ts"),        # a file outside the root
        "outdir": str(outside),                     # a folder outside the root
        "loop": ".",                                # a folder loop
        "ping": "pong", "pong": "ping",             # links that lead nowhere but to each other
        "deep/up": "..",                            # a loop one level up
        "alias.ts": "hello.ts",                     # inside: works
        "v2": "v1",                                 # inside: works
    }
    (alice / "deep").mkdir()
    for name, target in links.items():
        os.symlink(target, alice / name)
    write_scripts(alice, {"bad[name.ts": "return 1;\n"})  # not a route: warned once
    os.symlink("../bob", root / "carol")  # a tenant folder that is a link, at either level
    os.symlink("../bob/1", root / "alice" / "2")
    return {"root": root, "alice": alice, "bob": bob, "output": base / "server.out"}


@pytest.fixture(scope="module")
def client(dirs: dict[str, Path]) -> Iterator[httpx.Client]:
    args = ["--tenants-root", str(dirs["root"]), "--data", str(dirs["root"].parent / "data")]
    env = {"WEXEC_RELOAD_INTERVAL_MS": str(RELOAD_MS)}
    with running_server(args, env, output_path=dirs["output"]) as url, \
            httpx.Client(base_url=url, timeout=10) as c:
        yield c


def test_links_out_of_the_tenant_are_not_served(client: httpx.Client) -> None:
    assert client.get("/secret", headers=BOB).text == BOB_ENV  # bob's own script, for bob
    for path in ("/bobs", "/bobs-abs", "/bobdir/secret", "/bobdir/api/data", "/leak",
                 "/outdir/ok", "/outdir/leak"):
        r = client.get(path, headers=ALICE)
        assert r.status_code == 404, (path, r.text)
        assert BOB_ENV not in r.text and OUTSIDE_TEXT not in r.text and "bob data" not in r.text


def test_links_inside_the_tenant_keep_working(client: httpx.Client) -> None:
    assert client.get("/alias", headers=ALICE).text == "alice hello"
    assert client.get("/v2/x", headers=ALICE).text == "alice v1 x"
    assert client.get("/v1/x", headers=ALICE).text == "alice v1 x"


def test_a_tenant_folder_that_is_a_link_is_no_tenant(client: httpx.Client) -> None:
    for host in ("carol-1.example.com", "alice-2.example.com"):
        r = client.get("/secret", headers={"host": host})
        assert r.status_code == 404 and BOB_ENV not in r.text
        assert "default/1" in r.json()["message"]  # the Host fell back to the default tenant


def test_loops_stop_neither_start_up_nor_other_tenants_nor_reload(
    client: httpx.Client, dirs: dict[str, Path]
) -> None:
    # The server started with the loops in place (the fixture); alice herself is served too.
    assert client.get("/hello", headers=ALICE).text == "alice hello"
    write_scripts(dirs["bob"], {"new.ts": "return 'bob new';\n"})
    write_scripts(dirs["alice"], {"new.ts": "return 'alice new';\n"})
    eventually(lambda: client.get("/new", headers=BOB).text == "bob new", timeout_s=10)
    eventually(lambda: client.get("/new", headers=ALICE).text == "alice new", timeout_s=10)


def test_a_file_swapped_for_a_link_out_is_dropped(client: httpx.Client, dirs: dict[str, Path]) -> None:
    assert client.get("/swapped", headers=ALICE).text == "alice own"
    swapped = dirs["alice"] / "swapped.ts"
    staged = swapped.with_name(".swapped.tmp")
    os.symlink(dirs["bob"] / "secret.ts", staged)
    staged.replace(swapped)
    eventually(lambda: client.get("/swapped", headers=ALICE).status_code == 404, timeout_s=10)
    assert BOB_ENV not in client.get("/swapped", headers=ALICE).text


def test_each_problem_is_warned_once(client: httpx.Client, dirs: dict[str, Path]) -> None:
    time.sleep(12 * RELOAD_MS / 1000)  # a dozen re-scans since start-up
    text = dirs["output"].read_text()
    assert "Traceback" not in text and "ELOOP" not in text
    for name in ("bobs.ts", "bobs-abs.ts", "bobdir", "leak.ts", "outdir", "loop", "deep/up",
                 "bad[name.ts"):
        assert text.count(f"alice/1/{name}:") == 1, (name, text)
    for folder in ("carol", "alice/2"):
        assert text.count(f"{folder}: a tenant folder that is a link is no tenant") == 1, text
    assert "alias.ts" not in text and "v2" not in text
    assert OUTSIDE_TEXT not in text and BOB_ENV not in text
    # Fixed, the warning goes; broken again, it comes back once.
    os.unlink(dirs["alice"] / "loop")
    time.sleep(10 * RELOAD_MS / 1000)  # re-scans that find it fixed
    os.symlink(".", dirs["alice"] / "loop")
    eventually(lambda: dirs["output"].read_text().count("alice/1/loop:") == 2, timeout_s=5)


def test_a_read_checks_the_file_it_opened(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_scripts(root, {"a.ts": "return 1;\n", "sub/b.ts": "return 2;\n"})
    write_scripts(outside, {"c.ts": OUTSIDE_TEXT})
    os.symlink("sub/b.ts", root / "inside.ts")
    os.symlink(outside / "c.ts", root / "out.ts")
    os.symlink(outside, root / "outdir")
    os.mkfifo(root / "fifo.ts")
    assert read_inside(root, "a.ts")[0] == b"return 1;\n"
    assert read_inside(root, "inside.ts")[0] == b"return 2;\n"
    for rel in ("out.ts", "outdir/c.ts", "fifo.ts"):  # a FIFO is refused, not waited on
        with pytest.raises(OutsideRoot):
            read_inside(root, rel)
    os.symlink(root, tmp_path / "linked-root")
    with pytest.raises(OutsideRoot):  # a root reached through a link is no root
        read_inside(tmp_path / "linked-root", "a.ts")
    write_atomically(root / "a.ts", "return 3;\n")
    assert read_inside(root, "a.ts")[0] == b"return 3;\n"


def test_a_scan_is_bounded_however_links_multiply(tmp_path: Path) -> None:
    write_scripts(tmp_path, {"d0/x.ts": "return 1;\n"})
    for i in range(1, 21):  # each level links twice to the one below: 2**20 paths to d0/x.ts
        (tmp_path / f"d{i}").mkdir()
        for name in ("a", "b"):
            os.symlink(f"../d{i - 1}", tmp_path / f"d{i}" / name)
    t0 = time.monotonic()
    found = scan(tmp_path, 1000)
    assert time.monotonic() - t0 < 2
    assert len(found.found) < 1000
    assert any("more than 1000 entries" in why for why in found.skipped.values())


def test_a_script_larger_than_the_cap_is_not_read(tmp_path: Path) -> None:
    with open(tmp_path / "big.ts", "wb") as big:
        big.truncate(MAX_SCRIPT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(OSError, match="larger than"):
        read_inside(tmp_path, "big.ts")
