"""A tenant's schedule history: one JSON line per fire, skip or missed tick, in
`{data}/schedules/{subdomain}-{execId}/fires.log`.

It is a log like the request log (`observe.logfiles`): every process serving the data dir appends
to the same file (one `write` of one line on an `O_APPEND` descriptor, so lines from several
processes never interleave); past `ROTATE_BYTES` one process renames it `fires.{UTC time}.log`,
which is then compressed with zstd, and the oldest rotated files go while the history takes more
than `DISK_BYTES`. Only the process that claimed a tick (`ticks.Ticks`) records it: one line per
fire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runtime.observe import logfiles

STEM = "fires"
ROTATE_BYTES = 1024 * 1024
DISK_BYTES = 8 * 1024 * 1024
"""About a hundred thousand compressed fires: a minutely schedule's last few months."""
COMPRESS_DELAY_S = 0.5
"""A process that opened fires.log just before another renamed it still writes its line to the
rotated file: it is compressed once left alone this long (`logfiles.compress_rotated`)."""


@dataclass(frozen=True, slots=True)
class FiresLog:
    """The fires.log of one tenant."""

    folder: Path

    def append(self, record: dict[str, Any]) -> None:
        """Add one record; the file is rotated when this line takes it past `ROTATE_BYTES`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        logfiles.append(self.folder, STEM, orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE),
                        ROTATE_BYTES, DISK_BYTES, COMPRESS_DELAY_S)

    def newest(self, limit: int, *, include_rotated: bool,
               wanted: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The newest `limit` records that are `wanted`, newest first, reading rotated files
        (decompressed as they are read) when asked; a line that does not parse (cut by a crash)
        is skipped. Holds at most `limit` records, however long the history."""
        found: list[dict[str, Any]] = []
        for file in logfiles.tenant_files(self.folder, STEM, "all" if include_rotated else "current"):
            if len(found) >= limit:
                break
            kept: deque[dict[str, Any]] = deque(maxlen=limit - len(found))
            try:
                for line in logfiles.lines(file.path):
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(record, dict) and (wanted is None or wanted(record)):
                        kept.append(record)
            except FileNotFoundError:  # removed by the disk quota since it was listed
                continue
            found.extend(reversed(kept))
        return found
