"""The fetch unit's settings: kept apart from the unit, so ``runtime.config`` (which every
process imports) does not import the HTTP client with them."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from runtime.host.fetch.guard import parse_hosts

MiB = 1024 * 1024


class FetchSettings(BaseSettings):
    """The fetch unit's section of ``runtime.config.Settings``."""

    fetch_allow_hosts: str = Field(
        "", description="Comma-separated host[:port] targets scripts may fetch although the "
        "SSRF rules refuse them (loopback, private, link-local...), matched exactly on host and "
        "port (no port: any), e.g. 127.0.0.1:9000,internal.example.",
    )
    tenant_fetch_hosts: dict[str, str] = Field(
        default_factory=dict, description='Per tenant, the only host[:port] targets its scripts '
        'may fetch (comma-separated), e.g. {"alice/1": "api.example.com"}; unset: any public '
        "host. It narrows and never widens WEXEC_FETCH_ALLOW_HOSTS.",
    )
    fetch_max_subrequests: int = Field(
        50, ge=0, description="Fetches (each redirect followed counts) one request may make.",
    )
    fetch_max_response_bytes: int = Field(
        64 * MiB, ge=0, description="Largest response body one fetch may read; past it the "
        "body's stream fails.",
    )

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        parse_hosts(value)  # a bad entry stops start-up, naming it, instead of every fetch
        return value

    @field_validator("tenant_fetch_hosts")
    @classmethod
    def _tenant_hosts(cls, value: dict[str, str]) -> dict[str, str]:
        for hosts in value.values():
            parse_hosts(hosts)
        return value
