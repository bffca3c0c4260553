"""The response's own op: a streamed body waits for its client (``response.drain``, ABI.md).

Not a capability a script may be without, so every sandbox holds it (``registry.CORE``).
"""

from __future__ import annotations

from typing import Any

from runtime.host import OpContext, Unit, always

STREAM_BUFFER_BYTES = 256 * 1024
"""What a streamed body may hold beyond what its client has taken before the script waits."""


async def drain(args: dict[str, Any], ctx: OpContext) -> None:
    """``response.drain {}``: settles with ``null`` once the client has taken most of what the
    request's stream holds."""
    if ctx.stream is not None:
        await ctx.stream.drained(STREAM_BUFFER_BYTES)


UNIT = Unit(
    name="response",
    granted_by="every script's response may stream",
    ops={"drain": drain},
    grant=always,
)
