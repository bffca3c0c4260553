"""The crypto unit: hashes and HMACs as pure calls, reachable without any other unit."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from runtime.host import crypto, timers
from runtime.sandbox import ScriptError
from tests.host.harness import holding

HASHES = (
    "const c = require('crypto');\n"
    "return { h: c.createHash('sha256').update('x').digest('hex'),"
    " m: c.createHmac('sha256', 'k').update('m').digest('hex') };"
)


async def test_crypto_works_in_a_sandbox_without_timers() -> None:
    with holding(crypto.UNIT) as h:
        out = json.loads((await h.run(HASHES)).body)
    assert out == {
        "h": hashlib.sha256(b"x").hexdigest(),
        "m": hmac.new(b"k", b"m", "sha256").hexdigest(),
    }


async def test_a_sandbox_without_crypto_refuses_the_call_naming_the_unit() -> None:
    with holding(timers.UNIT) as h, pytest.raises(ScriptError) as caught:
        await h.run(HASHES)
    assert "host call 'crypto.hash' refused: this sandbox does not hold the crypto unit" in (
        caught.value.message
    )


def test_an_unknown_digest_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="Digest method not supported: 'whirlpool'"):
        crypto.digest(b"whirlpool\nx")
