"""The npm packages the prelude bundles (build/npm.py) and the encoding tables generated from one
of them (build/encodings.py): fetched into the build cache, checked against their pinned digest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runtime.buildtools import load_build_module
from tests.support import settings_for_tests

npm = load_build_module("npm")
encodings = load_build_module("encodings")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm.node_modules(settings_for_tests().cache_dir)


def test_every_pinned_package_is_unpacked(node_modules: Path) -> None:
    for name, version, _, _ in npm.PACKAGES:
        manifest = json.loads((node_modules / name / "package.json").read_text())
        assert (manifest["name"], manifest["version"]) == (name, version)


def test_a_tarball_whose_digest_differs_from_the_pin_is_refused(tmp_path: Path) -> None:
    name, version, _, _ = npm.PACKAGES[0]
    dest = tmp_path / name
    with pytest.raises(RuntimeError, match=f"{name}@{version} has integrity sha512-.*, expected sha512-AAAA"):
        npm._fetch(name, version, "sha512-AAAA", dest)
    assert not dest.exists()


def test_the_encoding_module_has_every_label_and_a_table_per_single_byte_encoding(node_modules: Path) -> None:
    source = encodings.module_source(node_modules)
    labels = json.loads(re.search(r"export const LABELS = (\{.*?\});", source).group(1))  # type: ignore[union-attr]
    tables = json.loads(re.search(r"export const SINGLE_BYTE = (\{.*?\});", source).group(1))  # type: ignore[union-attr]
    assert len(labels) > 200
    assert labels["latin1"] == labels["ascii"] == "windows-1252"
    assert labels["sjis"] == "shift_jis" and labels["iso-2022-kr"] == "replacement"
    assert len(tables) == 29  # 28 single-byte encodings of the standard, and x-user-defined
    assert all(len(t) == 128 for t in tables.values())
    assert tables["windows-1252"][0] == "\u20ac" and tables["iso-8859-8-i"] == tables["iso-8859-8"]
