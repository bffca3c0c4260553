"""The SSRF guard on its own: every spelling of an address is read as the address it means, every
refused range is named, allow-lists match exactly and only narrow, and names are checked on
every address they resolve to, inside the connection attempt."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from runtime.compiler.magic import MagicComments
from runtime.host import Refused
from runtime.host.fetch.client import AddressRefused, CheckedResolver
from runtime.host.fetch.guard import (
    BadHost,
    Guard,
    HostEntry,
    parse_host,
    parse_hosts,
    refusal_rule,
)
from runtime.host.fetch.unit import configure, grant
from tests.support import settings_for_tests

LOOPBACK = IPv4Address("127.0.0.1")


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "2130706433", "0x7f000001", "0X7F000001", "0177.0.0.1", "0x7f.1", "127.1",
    "127.0.1", "0177.0.0.01", "127.0.0.1.",
])
def test_every_spelling_of_an_ipv4_address_is_that_address(spelling: str) -> None:
    assert parse_host(spelling) == LOOPBACK


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.2.3.0x100", "09.1.1.1", "1..2"])
def test_a_host_ending_in_a_number_that_is_no_address_is_refused(host: str) -> None:
    with pytest.raises(BadHost):
        parse_host(host)


def test_names_stay_names() -> None:
    assert parse_host("Example.COM.") == "example.com"
    assert parse_host("1e5.example") == "1e5.example"
    assert parse_host("[::1]") == IPv6Address("::1")


@pytest.mark.parametrize(("addr", "rule"), [
    ("0.1.2.3", "this-host address (0.0.0.0/8)"),
    ("127.5.5.5", "loopback address"),
    ("172.20.0.1", "private address"),
    ("192.168.1.1", "private address"),
    ("100.127.255.255", "shared (carrier-grade NAT) address"),
    ("169.254.169.254", "cloud metadata address"),
    ("169.254.1.1", "link-local address"),
    ("224.0.0.1", "multicast address"),
    ("240.0.0.1", "reserved (non-public) address"),
    ("::", "unspecified address"),
    ("::ffff:10.0.0.1", "private address embedded in an IPv6 address"),
    ("64:ff9b::7f00:1", "loopback address embedded in an IPv6 address"),
    ("2002:7f00:1::", "loopback address embedded in an IPv6 address"),
    ("fe80::1%2", "link-local address (with a zone)"),
])
def test_each_refused_range_is_named(addr: str, rule: str) -> None:
    assert refusal_rule(ip_address(addr)) == rule


def test_public_addresses_pass() -> None:
    for addr in ("93.184.216.34", "2606:2800:220:1::1", "::ffff:93.184.216.34", "1.1.1.1"):
        assert refusal_rule(ip_address(addr)) is None


def test_the_operator_opens_exact_host_and_port() -> None:
    guard = Guard(parse_hosts("127.0.0.1:9000, internal.example, [::1]:81"))
    guard.check(LOOPBACK, LOOPBACK, 9000)
    guard.check("internal.example", ip_address("10.0.0.5"), 443)  # the name, any port
    guard.check("localhost", LOOPBACK, 9000)  # a name is matched by what it resolves to as well
    guard.check(IPv6Address("::1"), IPv6Address("::1"), 81)
    with pytest.raises(Refused, match=r"^fetch to 127.0.0.1 refused: loopback address; allow it "
                                      r"with WEXEC_FETCH_ALLOW_HOSTS \(e.g. "
                                      r"WEXEC_FETCH_ALLOW_HOSTS=127.0.0.1:9001\)$"):
        guard.check(LOOPBACK, LOOPBACK, 9001)


def test_the_servers_own_address_is_refused() -> None:
    guard = Guard(own_host="0.0.0.0", own_port=8080)
    # a public-looking address this machine does not have passes; a local one at the port not
    assert guard._own(ip_address("93.184.216.34"), 8080) is False
    assert Guard(own_host="93.184.216.34", own_port=8080)._own(ip_address("93.184.216.34"), 8080)
    assert not Guard(own_host="93.184.216.34", own_port=8080)._own(ip_address("93.184.216.34"), 80)


def test_allow_list_entries_are_parsed_and_bad_ones_named() -> None:
    assert parse_hosts("a.com, b.com:8080 ,[::1]:9") == (
        HostEntry("a.com", None), HostEntry("b.com", 8080), HostEntry(IPv6Address("::1"), 9),
    )
    with pytest.raises(ValueError, match="the port must be a number"):
        parse_hosts("a.com:http")


def test_a_tenants_list_narrows_and_allow_hosts_narrows_further() -> None:
    settings = settings_for_tests(tenant_fetch_hosts={"alice/1": "api.example.com,b.example:8443"})
    everyone = configure(settings, "bob/1")
    assert everyone.hosts is None
    assert grant(everyone, MagicComments(allow_hosts=("x.example",))).hosts == (
        HostEntry("x.example", None),
    )
    alice = configure(settings, "alice/1")
    assert alice.hosts == parse_hosts("api.example.com,b.example:8443")
    narrowed = grant(alice, MagicComments(allow_hosts=("b.example", "evil.example", "api.example.com:1")))
    assert narrowed.hosts == (HostEntry("b.example", 8443), HostEntry("api.example.com", 1))
    assert narrowed.narrowed_by == "// @allow-hosts"


async def test_a_name_is_refused_on_what_it_resolves_to_when_connecting() -> None:
    resolver = CheckedResolver(Guard())
    with pytest.raises(AddressRefused, match=r"fetch to localhost \(127.0.0.1\) refused: loopback"):
        await resolver.resolve("localhost", 80)
    opened = CheckedResolver(Guard(parse_hosts("localhost:8000")))
    found = await opened.resolve("localhost", 8000)
    assert {r["host"] for r in found} <= {"127.0.0.1", "::1"}  # the checked addresses themselves
    assert all(r["hostname"] == "localhost" for r in found)  # TLS still names the host


def test_a_bad_allow_list_stops_the_settings_naming_the_entry() -> None:
    with pytest.raises(ValueError, match=r"'a.com:http': the port must be a number"):
        settings_for_tests(fetch_allow_hosts="127.0.0.1:9000,a.com:http")
    with pytest.raises(ValueError, match=r"'1.2.3.4.5' ends in a number but is not an IPv4"):
        settings_for_tests(tenant_fetch_hosts={"alice/1": "1.2.3.4.5"})
