"""``setTimeout`` and friends: the guest asks for a wake-up, the event loop sleeps for it."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.config import Settings
from runtime.host import Capabilities, OpContext


async def timer(args: dict[str, Any], ctx: OpContext) -> None:
    await asyncio.sleep(max(0.0, float(args.get("ms", 0))) / 1000.0)


def register(caps: Capabilities, settings: Settings) -> None:
    caps.ops["timer"] = timer
