"""Fixtures for the management API's tests: real `wexec serve` processes, one per test module.

`api` serves three tenants (default/1, alice/1, bob/7) from a tenants root, with an all-tenants
token and a token for alice/1 only; its client sends the all-tenants token. `open_api` serves
one folder with no token at all, as for local development: loopback only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runtime.api.tokens import hash_token
from tests.support import running_server, write_scripts

ADMIN_TOKEN = "admin-token-for-tests"
ALICE_TOKEN = "alice-token-for-tests"
PREFIX = "/api/v1/exec"


@dataclass
class Server:
    """A running server: its base URL, its scripts' folder(s) and a client of its API."""

    base: str
    root: Path
    client: httpx.Client

    def tenant(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tenants")
    for tenant in ("default/1", "alice/1", "bob/7"):
        write_scripts(root / tenant, {"hello.ts": f"return 'hello from {tenant}';\n"})
    env = {"WEXEC_API_TOKEN": ADMIN_TOKEN,
           "WEXEC_API_TENANT_TOKENS": json.dumps({"alice/1": hash_token(ALICE_TOKEN)})}
    with running_server(["--tenants-root", str(root)], env=env) as base, httpx.Client(
            base_url=base, headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30) as client:
        yield Server(base, root, client)


@pytest.fixture(scope="module")
def open_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("scripts")
    write_scripts(root, {"hello.ts": "return 'hello';\n"})
    with running_server(["--scripts", str(root)]) as base, \
            httpx.Client(base_url=base, timeout=30) as client:
        yield Server(base, root, client)
