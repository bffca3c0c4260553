"""``setTimeout`` and friends: the guest asks for a wake-up, the event loop's timer heap keeps it.

A delay, not a task: a pending timer costs the host a timer handle (about 200 bytes), not a
task and its coroutine (about 3 KiB), and requests may keep many. Granted to every script: a
timer reaches nothing but the host's clock, and the pending-operation caps bound how many wait.
"""

from __future__ import annotations

from typing import Any

from runtime.host import Unit, always


def sleep(args: dict[str, Any]) -> float:
    """``timers.sleep {"ms"}``: settles with ``null`` once ``ms`` have passed (seconds here)."""
    return max(0.0, float(args.get("ms", 0))) / 1000.0


UNIT = Unit(
    name="timers",
    granted_by="every script may use timers where the timers unit is held",
    delays={"sleep": sleep},
    grant=always,
)
