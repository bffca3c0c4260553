"""``setTimeout`` and friends: the guest asks for a wake-up, the event loop's timer heap keeps it.

A delay, not a task: a pending timer costs the host a timer handle (about 200 bytes), not a
task and its coroutine (about 3 KiB), and requests may keep many.
"""

from __future__ import annotations

from typing import Any

from runtime.config import Settings
from runtime.host import Capabilities


def timer(args: dict[str, Any]) -> float:
    return max(0.0, float(args.get("ms", 0))) / 1000.0


def register(caps: Capabilities, settings: Settings) -> None:
    caps.delays["timer"] = timer
