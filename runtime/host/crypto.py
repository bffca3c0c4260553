"""Hashing for ``require('crypto')``: digests and HMACs computed by the host's hashlib.

The guest frames each request as ``alg`` ``\\n`` payload; randomness does not cross here, the
guest takes it from WASI ``random_get`` directly. Calls only: hashing acts for nobody.
"""

from __future__ import annotations

import hashlib
import hmac

from runtime.host import Unit, always

ALGORITHMS = frozenset({"md5", "sha1", "sha256", "sha384", "sha512"})


def _split(data: bytes) -> tuple[str, bytes]:
    alg, sep, rest = data.partition(b"\n")
    name = alg.decode("ascii", "replace").lower().replace("-", "")
    if not sep or name not in ALGORITHMS:
        raise ValueError(f"Digest method not supported: {alg.decode('ascii', 'replace')!r}")
    return name, rest


def digest(data: bytes) -> bytes:
    alg, payload = _split(data)
    return hashlib.new(alg, payload).digest()


def hmac_digest(data: bytes) -> bytes:
    alg, rest = _split(data)
    if len(rest) < 4:
        raise ValueError("malformed hmac request")
    klen = int.from_bytes(rest[:4], "little")
    key, payload = rest[4 : 4 + klen], rest[4 + klen :]
    return hmac.digest(key, payload, alg)


UNIT = Unit(
    name="crypto",
    granted_by="every script may hash where the crypto unit is held",
    calls={"hash": digest, "hmac": hmac_digest},
    grant=always,
)
