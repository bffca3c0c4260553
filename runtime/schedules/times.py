"""Schedule times: UTC, to the second, written as ISO 8601 with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def next_tick(expression: str, after: datetime) -> datetime:
    """The first tick of `expression` strictly after `after`."""
    tick: datetime = croniter(expression, after).get_next(datetime)
    return tick


def last_tick(expression: str, until: datetime) -> datetime:
    """The latest tick of `expression` at or before `until`."""
    tick: datetime = croniter(expression, until + timedelta(seconds=1)).get_prev(datetime)
    return tick


def count_ticks(expression: str, first: datetime, last: datetime, cap: int) -> int:
    """How many ticks lie in [first, last], counting no further than `cap`."""
    count, tick = 0, first
    while tick <= last and count < cap:
        count += 1
        tick = next_tick(expression, tick)
    return count
