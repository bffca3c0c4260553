"""One server process, in-process, for the tests that need two: `python -m
tests.schedules.one_process SCRIPTS DATA WHEN` starts the app's lifespan (which registers the
schedules and records missed ticks), starts what is due at WHEN (ISO 8601, a fake clock), waits
for those runs and prints what this process did as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from runtime.app import create_app
from runtime.schedules.times import parse_iso
from tests.support import Lifespan, settings_for_tests


async def main(scripts: Path, data: Path, when: str) -> None:
    app = create_app(settings_for_tests(scripts=scripts, data=data))
    lifespan = Lifespan(app)
    await lifespan.start()
    try:
        assert app.schedules is not None
        fired = await asyncio.gather(*app.schedules.start_due(parse_iso(when)))
        print(json.dumps({"fired": [f.run_id for f in fired if f is not None],
                          "missed": app.schedules.figures().missed}))
    finally:
        await lifespan.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
