"""Where a script's fetch may connect: SSRF protection, on by default.

Every address a fetch would connect to is checked here, on the host, from the host's own parse
of the URL (the guest's parse is never trusted): a host written as an IP address in any
spelling WHATWG URL parsers accept (``2130706433``, ``0x7f000001``, ``0177.1``, ``127.1``,
``[::ffff:7f00:1]``) is read as the address it means, and a name is resolved and every address
it resolves to is checked; the connection then goes to a checked address (``client.py``), so
a name that resolves differently a moment later (DNS rebinding) gains nothing. Refused:
loopback, this-host, private, shared (CGNAT), link-local (cloud metadata), multicast, reserved
and every other non-global range, IPv4 addresses embedded in IPv6 ones that are refused, and
the server's own listening address. ``WEXEC_FETCH_ALLOW_HOSTS`` opens exact ``host[:port]``
targets; a tenant's list and a script's ``@allow-hosts`` only narrow what may be reached.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from runtime.host import Refused

Address = IPv4Address | IPv6Address

OPEN_SETTING = "WEXEC_FETCH_ALLOW_HOSTS"

_V4_RULES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), why) for net, why in (
        ("0.0.0.0/8", "this-host address (0.0.0.0/8)"),
        ("127.0.0.0/8", "loopback address"),
        ("10.0.0.0/8", "private address"),
        ("172.16.0.0/12", "private address"),
        ("192.168.0.0/16", "private address"),
        ("100.64.0.0/10", "shared (carrier-grade NAT) address"),
        ("169.254.169.254/32", "cloud metadata address"),
        ("169.254.0.0/16", "link-local address"),
        ("224.0.0.0/4", "multicast address"),
    )
)
_V6_RULES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), why) for net, why in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("fc00::/7", "private (unique local) address"),
        ("fe80::/10", "link-local address"),
        ("ff00::/8", "multicast address"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")


def embedded_v4(addr: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries: mapped (``::ffff:a.b.c.d``), compatible
    (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``) or 6to4 (``2002:AABB:CCDD::``)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    packed = addr.packed
    if packed[:12] == bytes(12) and int(addr) > 1:
        return IPv4Address(packed[12:])
    if addr in _NAT64:
        return IPv4Address(packed[12:])
    if addr in _SIX_TO_FOUR:
        return IPv4Address(packed[2:6])
    return None


def refusal_rule(addr: Address) -> str | None:
    """Why connecting to ``addr`` is refused by the address rules, or None if it is public."""
    if isinstance(addr, IPv6Address):
        if addr.scope_id:
            return "link-local address (with a zone)"
        inner = embedded_v4(addr)
        if inner is not None:
            why = refusal_rule(inner)
            return f"{why} embedded in an IPv6 address" if why else None
        for net, why in _V6_RULES:
            if addr in net:
                return why
    else:
        for net4, why in _V4_RULES:
            if addr in net4:
                return why
    if not addr.is_global:
        return "reserved (non-public) address"
    return None


def _ipv4_number(part: str) -> int | None:
    """One part of a legacy IPv4 host (WHATWG URL's IPv4 number parser): decimal, ``0x`` hex,
    or ``0``-led octal; None if it is not a number."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits:
        return 0 if base == 16 else None
    try:
        return int(digits, base) if digits.isalnum() and digits.isascii() else None
    except ValueError:
        return None


class BadHost(ValueError):
    """A URL host that is neither a name nor an address (``1.2.3.4.5``, ``256.1.1.1``)."""


def legacy_ipv4(host: str) -> IPv4Address | None:
    """The address ``host`` spells in any form a URL parser accepts (``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``), or None when it is a name. BadHost when it ends in a number
    yet is no address: a browser refuses it, and no resolver should be asked."""
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not parts or _ipv4_number(parts[-1]) is None:
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise BadHost(f"{host!r} ends in a number but is not an IPv4 address")
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)):
        raise BadHost(f"{host!r} is not an IPv4 address: a part is out of range")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def parse_host(host: str) -> Address | str:
    """A URL's host as an address (in whatever spelling) or a lower-case name."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        try:
            return IPv6Address(host[1:-1])
        except ValueError:
            raise BadHost(f"{host!r} is not an IPv6 address") from None
    if ":" in host:
        try:
            return IPv6Address(host)
        except ValueError:
            raise BadHost(f"{host!r} is not a host name or address") from None
    v4 = legacy_ipv4(host)
    return v4 if v4 is not None else host.rstrip(".")


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One ``host[:port]`` of an allow-list; no port: any port."""

    host: Address | str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> HostEntry:
        text = text.strip()
        port: int | None = None
        if text.startswith("["):
            inner, _, rest = text[1:].partition("]")
            host_text = f"[{inner}]"
            if rest:
                port = _port(rest.removeprefix(":"), text)
        elif text.count(":") == 1:
            host_text, _, port_text = text.partition(":")
            port = _port(port_text, text)
        else:
            host_text = text
        if not host_text:
            raise ValueError(f"{text!r} names no host")
        return cls(parse_host(host_text), port)

    def matches(self, host: Address | str, port: int) -> bool:
        return self.host == host and (self.port is None or self.port == port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if isinstance(self.host, IPv6Address) else str(self.host)
        return host if self.port is None else f"{host}:{self.port}"


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def parse_hosts(text: str | list[str]) -> tuple[HostEntry, ...]:
    """A comma-separated (or listed) allow-list, as settings and ``@allow-hosts`` write it."""
    items = text.split(",") if isinstance(text, str) else text
    return tuple(HostEntry.parse(item) for item in items if item.strip())


def shown(host: Address | str, port: int) -> str:
    """``host:port`` as an allow-list entry would write it."""
    return f"[{host}]:{port}" if isinstance(host, IPv6Address) else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Guard:
    """The address rules of one server process: what the operator opened, and its own address."""

    opened: tuple[HostEntry, ...] = ()
    own_host: str = ""  # where the server listens: never a fetch target unless opened
    own_port: int = 0

    def check(self, name: Address | str, addr: Address, port: int) -> None:
        """Refuse connecting to ``addr``:``port`` for the URL host ``name`` (Refused, a
        TypeError to the script, naming the rule, the address and how to open it)."""
        if any(e.matches(name, port) or e.matches(addr, port) for e in self.opened):
            return
        why = refusal_rule(addr)
        if why is None and self._own(addr, port):
            why = "the server's own address"
        if why is None:
            return
        target = str(addr) if name == addr else f"{name} ({addr})"
        raise Refused(
            f"fetch to {target} refused: {why}; allow it with {OPEN_SETTING} "
            f"(e.g. {OPEN_SETTING}={shown(name, port)})"
        )

    def _own(self, addr: Address, port: int) -> bool:
        if port != self.own_port or not self.own_host:
            return False
        try:
            listen = ipaddress.ip_address(self.own_host)
        except ValueError:
            return False
        if listen.is_unspecified:
            return _is_local(addr)
        return listen == addr


@functools.lru_cache(maxsize=256)
def _is_local(addr: Address) -> bool:
    """Whether ``addr`` belongs to this machine (it can be bound to)."""
    family = socket.AF_INET6 if isinstance(addr, IPv6Address) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((str(addr), 0))
        except OSError:
            return False
    return True


def allowed_by(entries: tuple[HostEntry, ...] | None, host: Address | str, port: int) -> bool:
    """Whether a narrowing list (a tenant's, a script's) lets ``host``:``port`` be reached;
    None: no list, every host the address rules allow."""
    return entries is None or any(e.matches(host, port) for e in entries)
