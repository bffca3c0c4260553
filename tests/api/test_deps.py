"""Which tenant a management request acts on: execId/exec_id and subdomain, the query winning."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from runtime.api.access import Access
from runtime.api.deps import TenantFields, tenant_of
from runtime.catalog.live import Catalog
from runtime.config import Settings
from runtime.http.errors import HTTPError


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog[None]:
    for tenant in ("alice/1", "bob/7"):
        (tmp_path / tenant).mkdir(parents=True)
    settings = Settings(tenants_root=tmp_path, data=tmp_path / "data")
    return Catalog(settings, lambda root, rel: None, lambda tenant, rel, artefact: None)


EVERY_TENANT = Access(None)
"""What WEXEC_API_TOKEN admits."""


def request(query: dict[str, str] | None = None, host: str = "localhost:8080",
            access: Access = EVERY_TENANT) -> Request:
    """A management request as `deps.authorize` leaves it: its access admitted."""
    return Request({"type": "http", "method": "GET", "path": "/api/v1/exec/scripts/list",
                    "query_string": urlencode(query or {}).encode(),
                    "headers": [(b"host", host.encode())], "state": {"access": access}})


def name(catalog: Catalog[None], query: dict[str, str] | None = None,
         body: TenantFields | None = None, host: str = "localhost:8080",
         access: Access = EVERY_TENANT) -> str:
    return tenant_of(request(query, host, access), catalog, body).name  # type: ignore[arg-type]


def refusal(catalog: Catalog[None], query: dict[str, str] | None = None,
            body: TenantFields | None = None, access: Access = EVERY_TENANT) -> HTTPError:
    with pytest.raises(HTTPError) as refused:
        name(catalog, query, body, access=access)
    return refused.value


def test_without_a_tenant_named_the_host_decides(catalog: Catalog[None]) -> None:
    assert name(catalog, host="alice-1.example.com") == "alice/1"
    assert name(catalog, host="bob-7.example.com") == "bob/7"
    assert name(catalog) == "default/1"
    assert name(catalog, {"execId": "", "subdomain": ""}, host="bob-7.x") == "bob/7"  # empty: none


def test_exec_id_and_subdomain_name_a_tenant_in_the_query_or_the_body(
        catalog: Catalog[None]) -> None:
    assert name(catalog, {"execId": "7", "subdomain": "bob"}) == "bob/7"
    assert name(catalog, {"exec_id": "7", "subdomain": "bob"}) == "bob/7"
    assert name(catalog, {"execId": "7", "exec_id": "7", "subdomain": "BOB"}) == "bob/7"
    assert name(catalog, body=TenantFields(execId="1", subdomain="alice")) == "alice/1"
    assert name(catalog, body=TenantFields(exec_id="1", subdomain="alice")) == "alice/1"
    assert name(catalog, {"execId": "1"}, host="bob-7.example.com") == "default/1"  # not the Host


def test_the_query_wins_over_the_body_field_by_field(catalog: Catalog[None]) -> None:
    body = TenantFields(execId="1", subdomain="alice")
    assert name(catalog, {"execId": "7", "subdomain": "bob"}, body) == "bob/7"
    assert name(catalog, {"subdomain": "bob"}, TenantFields(execId="7")) == "bob/7"
    assert name(catalog, {"exec_id": "7"}, TenantFields(exec_id="1", subdomain="bob")) == "bob/7"


@pytest.mark.parametrize(("query", "body"), [
    ({"execId": "1", "exec_id": "7"}, None),
    (None, TenantFields(execId="1", exec_id="7", subdomain="bob")),
])
def test_exec_id_spelled_twice_must_agree(catalog: Catalog[None], query: dict[str, str] | None,
                                          body: TenantFields | None) -> None:
    err = refusal(catalog, query, body)
    assert err.status == 400 and err.code == "invalid_tenant"
    assert "execId=1 and exec_id=7" in err.message and "give one of them" in err.message


def test_a_subdomain_alone_asks_for_an_exec_id(catalog: Catalog[None]) -> None:
    for query, body in (({"subdomain": "bob"}, None), (None, TenantFields(subdomain="bob"))):
        err = refusal(catalog, query, body)
        assert err.status == 400 and "add one (e.g. execId=1)" in err.message


@pytest.mark.parametrize(("query", "field"), [
    ({"execId": "../1"}, "execId"), ({"execId": "1", "subdomain": "a_b"}, "subdomain"),
    ({"execId": "-1"}, "execId"), ({"execId": "1", "subdomain": "bob/7"}, "subdomain"),
])
def test_names_that_cannot_be_tenants_are_refused(catalog: Catalog[None], query: dict[str, str],
                                                  field: str) -> None:
    err = refusal(catalog, query)
    assert err.status == 400 and err.message.startswith(f"{field}=")
    assert "lower-case letters, digits and '-'" in err.message


def test_an_unknown_tenant_is_a_404_naming_it(catalog: Catalog[None]) -> None:
    err = refusal(catalog, {"execId": "8", "subdomain": "bob"})
    assert err.status == 404 and err.code == "unknown_tenant" and err.details == {"tenant": "bob/8"}
    assert "no tenant bob/8" in err.message


def test_a_tenant_token_acts_on_its_tenant_and_no_other(catalog: Catalog[None]) -> None:
    alice = Access("alice/1")
    assert name(catalog, access=alice) == "alice/1"  # naming nothing: the token's tenant
    assert name(catalog, {"execId": "1", "subdomain": "alice"}, access=alice) == "alice/1"
    for query, body in (({"execId": "7", "subdomain": "bob"}, None),
                        (None, TenantFields(execId="7", subdomain="bob")),
                        ({"execId": "1"}, None)):  # default/1
        err = refusal(catalog, query, body, access=alice)
        assert err.status == 403 and err.code == "forbidden" and "grants tenant alice/1" in err.message
    assert name(catalog, host="bob-7.example.com", access=alice) == "alice/1"  # not the Host's


def test_a_tenant_token_learns_nothing_of_tenants_it_may_not_see(catalog: Catalog[None]) -> None:
    """Another tenant is a 403 whether it exists or not: a 404 would say which ones do."""
    alice = Access("alice/1")
    assert refusal(catalog, {"execId": "7", "subdomain": "bob"}, access=alice).status == 403
    assert refusal(catalog, {"execId": "8", "subdomain": "bob"}, access=alice).status == 403
