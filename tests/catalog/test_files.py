"""One tenant's files: every operation stays inside the tenant's folder, and writes are atomic."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from runtime.catalog.confine import OutsideRoot
from runtime.catalog.files import Entry, PathRefused, TenantFiles


@pytest.fixture
def tenant(tmp_path: Path) -> Path:
    """`tenants/alice/1` holding a script and a folder, beside another tenant and a secret."""
    root = tmp_path / "tenants" / "alice" / "1"
    (root / "api").mkdir(parents=True)
    (root / "hello.ts").write_text("return 'hello';\n")
    (root / "api" / "users.ts").write_text("return [];\n")
    bob = tmp_path / "tenants" / "bob" / "1"
    bob.mkdir(parents=True)
    (bob / "bob.ts").write_text("return 'bob';\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    return root


@pytest.fixture
def files(tenant: Path) -> TenantFiles:
    return TenantFiles(tenant)


# -- paths refused by their form --------------------------------------------------------------

@pytest.mark.parametrize("path", ["../bob/1/bob.ts", "api/../../../secret.txt", "..", "a/../b.ts",
                                  "./../x", "api/.."])
def test_paths_climbing_out_are_refused_naming_the_rule(files: TenantFiles, path: str) -> None:
    for attempt in (lambda: files.read(path), lambda: files.write(path, b"x"),
                    lambda: files.delete(path), lambda: files.move("hello.ts", path),
                    lambda: files.move(path, "x.ts"), lambda: files.entries(path)):
        with pytest.raises(PathRefused, match=r"climbs out with '\.\.'") as refused:
            attempt()
        assert refused.value.path == path


@pytest.mark.parametrize("path", ["/etc/passwd", "/", "//hello.ts", "/tmp"])
def test_absolute_paths_are_refused(files: TenantFiles, path: str) -> None:
    with pytest.raises(PathRefused, match="is absolute") as refused:
        files.read(path)
    assert str(refused.value).startswith(path)
    with pytest.raises(PathRefused, match="is absolute"):
        files.write(path, b"x")


@pytest.mark.parametrize("path", ["hello.ts\0", "a\0/b.ts", "\0"])
def test_nul_bytes_are_refused_and_shown_escaped(files: TenantFiles, path: str) -> None:
    with pytest.raises(PathRefused, match="NUL byte") as refused:
        files.write(path, b"x")
    assert "\\0" in refused.value.path and "\0" not in str(refused.value)


@pytest.mark.parametrize("path", ["", ".", "./", "./."])
def test_a_path_naming_no_file_is_refused(files: TenantFiles, path: str) -> None:
    with pytest.raises(PathRefused, match="names no file"):
        files.read(path)
    with pytest.raises(PathRefused, match="names no file"):
        files.delete(path)


def test_a_root_reached_through_a_link_is_refused(tmp_path: Path, tenant: Path) -> None:
    (tmp_path / "linked").symlink_to(tenant)
    with pytest.raises(OutsideRoot, match="is a link"):
        TenantFiles(tmp_path / "linked")


# -- links ------------------------------------------------------------------------------------

def test_links_out_are_refused_for_reading(tmp_path: Path, tenant: Path, files: TenantFiles) -> None:
    (tenant / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (tenant / "bobs.ts").symlink_to(tmp_path / "tenants" / "bob" / "1" / "bob.ts")
    (tenant / "bobdir").symlink_to(tmp_path / "tenants" / "bob" / "1")
    (tenant / "abs").symlink_to("/etc")
    for path in ("leak.txt", "bobs.ts"):
        with pytest.raises(OutsideRoot, match="resolves outside the tenant's folder"):
            files.read(path)
    for path in ("bobdir/bob.ts", "abs/hostname"):
        with pytest.raises(PathRefused, match="passes through a link that leads outside"):
            files.read(path)


def test_no_write_goes_through_a_folder_link_out(tmp_path: Path, tenant: Path,
                                                 files: TenantFiles) -> None:
    (tenant / "bobdir").symlink_to(tmp_path / "tenants" / "bob" / "1")
    for attempt in (lambda: files.write("bobdir/bob.ts", b"pwned"),
                    lambda: files.write("bobdir/new.ts", b"pwned"),
                    lambda: files.delete("bobdir/bob.ts"),
                    lambda: files.move("hello.ts", "bobdir/hello.ts"),
                    lambda: files.move("bobdir/bob.ts", "stolen.ts"),
                    lambda: files.entries("bobdir")):
        with pytest.raises(PathRefused, match="passes through a link"):
            attempt()
    assert (tmp_path / "tenants" / "bob" / "1" / "bob.ts").read_text() == "return 'bob';\n"
    assert sorted(os.listdir(tmp_path / "tenants" / "bob" / "1")) == ["bob.ts"]


def test_writing_or_deleting_a_link_acts_on_the_link_never_its_target(
        tmp_path: Path, tenant: Path, files: TenantFiles) -> None:
    (tenant / "leak.txt").symlink_to(tmp_path / "secret.txt")
    files.write("leak.txt", b"mine")
    assert not (tenant / "leak.txt").is_symlink() and files.read("leak.txt") == b"mine"
    assert (tmp_path / "secret.txt").read_text() == "outside\n"
    (tenant / "again.txt").symlink_to(tmp_path / "secret.txt")
    files.delete("again.txt")
    assert not os.path.lexists(tenant / "again.txt") and (tmp_path / "secret.txt").exists()


def test_links_inside_the_tenant_keep_working(tenant: Path, files: TenantFiles) -> None:
    (tenant / "alias.ts").symlink_to("hello.ts")
    (tenant / "v2").symlink_to("api")
    assert files.read("alias.ts") == b"return 'hello';\n"
    assert files.read("v2/users.ts") == b"return [];\n"
    files.write("v2/new.ts", b"return 2;\n")
    assert (tenant / "api" / "new.ts").read_bytes() == b"return 2;\n"


# -- special files ----------------------------------------------------------------------------

def test_special_files_are_refused(tenant: Path, files: TenantFiles) -> None:
    os.mkfifo(tenant / "pipe.ts")
    with pytest.raises(OutsideRoot, match="not a regular file"):
        files.read("pipe.ts")  # and never blocks waiting for a writer
    with pytest.raises(PathRefused, match="FIFO, socket or device"):
        files.write("pipe.ts", b"x")
    with pytest.raises(PathRefused, match="FIFO, socket or device"):
        files.move("pipe.ts", "other.ts")
    assert "pipe.ts" not in [e.path for e in files.entries()]


def test_a_socket_and_a_device_are_refused(tenant: Path, files: TenantFiles) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tenant / "sock"))
        with pytest.raises(PathRefused, match="cannot be opened as a file"):
            files.read("sock")
        with pytest.raises(PathRefused, match="FIFO, socket or device"):
            files.delete("sock")
    if os.geteuid() == 0:
        os.mknod(tenant / "null", 0o600 | 0o020000, os.makedev(1, 3))
        with pytest.raises(OutsideRoot, match="not a regular file"):
            files.read("null")


def test_folders_are_not_read_or_overwritten_as_files(files: TenantFiles) -> None:
    with pytest.raises(OutsideRoot, match="not a regular file"):
        files.read("api")
    with pytest.raises(IsADirectoryError, match="api: is a folder"):
        files.write("api", b"x")
    with pytest.raises(NotADirectoryError, match="'hello.ts' on the way is a file"):
        files.write("hello.ts/x.ts", b"x")


# -- the operations ---------------------------------------------------------------------------

def test_write_creates_folders_and_replaces_whole_files(tenant: Path, files: TenantFiles) -> None:
    files.write("a/b/c.ts", b"return 1;\n")
    assert (tenant / "a" / "b" / "c.ts").read_bytes() == b"return 1;\n"
    files.write("a/b/c.ts", b"2")
    assert files.read("a/b/c.ts") == b"2"
    with pytest.raises(FileNotFoundError, match="its folder 'x' does not exist"):
        files.write("x/y.ts", b"", create_dirs=False)
    assert not [n for n in os.listdir(tenant / "a" / "b") if n.endswith(".tmp")]


def test_write_creates_a_tenant_folder_that_did_not_exist(tmp_path: Path) -> None:
    files = TenantFiles(tmp_path / "tenants" / "new" / "1")
    assert files.entries() == []
    files.write("hello.ts", b"hi")
    assert files.read("hello.ts") == b"hi"


def test_delete_removes_files_and_empty_folders_only(tenant: Path, files: TenantFiles) -> None:
    files.delete("hello.ts")
    assert not (tenant / "hello.ts").exists()
    with pytest.raises(FileNotFoundError, match="hello.ts: no such file"):
        files.delete("hello.ts")
    with pytest.raises(OSError, match="not empty; delete what it holds first"):
        files.delete("api")
    files.delete("api/users.ts")
    files.delete("api")
    assert os.listdir(tenant) == []


def test_move_renames_and_keeps_an_existing_target_unless_told(tenant: Path,
                                                               files: TenantFiles) -> None:
    files.write("other.ts", b"other")
    with pytest.raises(FileExistsError, match="other.ts: already exists"):
        files.move("hello.ts", "other.ts")
    assert files.read("other.ts") == b"other" and files.read("hello.ts") == b"return 'hello';\n"
    files.move("hello.ts", "other.ts", overwrite=True)
    assert files.read("other.ts") == b"return 'hello';\n" and not (tenant / "hello.ts").exists()
    files.move("api", "v1/api")
    assert files.read("v1/api/users.ts") == b"return [];\n"
    for target in ("v1/inner/v1", "v1", "./v1/"):
        with pytest.raises(PathRefused, match="nothing can move into itself"):
            files.move("v1", target)
    with pytest.raises(FileNotFoundError, match="missing.ts: no such file"):
        files.move("missing.ts", "x.ts")
    with pytest.raises(IsADirectoryError, match="v1: is a folder"):
        files.move("other.ts", "v1", overwrite=True)


def test_entries_lists_files_and_folders_within_the_tenant(
        tmp_path: Path, tenant: Path, files: TenantFiles) -> None:
    (tenant / "alias.ts").symlink_to("hello.ts")
    (tenant / "loop").symlink_to(".")
    (tenant / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (tenant / "api" / ".users.ts.0123456789ab.tmp").write_text("half")
    top = files.entries()
    assert [(e.path, e.kind) for e in top] == [
        ("alias.ts", "file"), ("api", "folder"), ("hello.ts", "file"), ("loop", "folder")]
    assert top[0] == Entry("alias.ts", "file", 16, (tenant / "hello.ts").stat().st_mtime_ns)
    assert [e.path for e in files.entries(recursive=True)] == [
        "alias.ts", "api", "api/users.ts", "hello.ts", "loop"]  # a folder link is not entered
    assert [e.path for e in files.entries("api")] == ["api/users.ts"]
    files.max_entries = 3
    with pytest.raises(OSError, match="holds more than 3 entries"):
        files.entries(recursive=True)


def test_a_reader_sees_the_old_file_or_the_new_never_part(files: TenantFiles) -> None:
    versions = [bytes([65 + i]) * (64 * 1024 * (i + 1)) for i in range(4)]
    files.write("big.ts", versions[0])
    seen: set[bytes] = set()
    torn: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = files.read("big.ts")
            if data not in versions:
                torn.append(len(data))
            seen.add(data[:1])

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for i in range(200):
            files.write("big.ts", versions[i % len(versions)])
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert torn == []
    assert len(seen) > 1  # the readers really ran during the writes
