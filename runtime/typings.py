"""The declarations of what scripts see (`wexec.d.ts`), for editors and the TypeScript checker.

`wexec types DIR` writes them beside a tenant's scripts, with a `tsconfig.json` that checks each
script as its own module against them; `GET /api/v1/exec/types` serves the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

DECLARATIONS = Path(__file__).resolve().with_name("wexec.d.ts")
FILE_NAME = "wexec.d.ts"

TSCONFIG = {
    "compilerOptions": {
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "lib": ["es2022", "dom", "dom.iterable", "dom.asynciterable"],
        "types": [],
        "moduleDetection": "force",
        "strict": True,
        "noEmit": True,
        "allowJs": True,
    },
    "include": ["**/*.ts", "**/*.js"],
    "exclude": ["node_modules", "_*", ".*"],
}
"""Every file its own module (top-level `await`, no clash between two scripts' names), the Web
APIs from TypeScript's `dom` library, nothing from `@types` packages wexec does not provide."""


def declarations() -> str:
    """The text of `wexec.d.ts`."""
    return DECLARATIONS.read_text()


def write(folder: Path) -> list[Path]:
    """Write `wexec.d.ts` into `folder` (created if needed), and a `tsconfig.json` unless one is
    there already: a project's own settings are never replaced. Returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / FILE_NAME]
    written[0].write_text(declarations())
    config = folder / "tsconfig.json"
    if not config.exists():
        config.write_text(json.dumps(TSCONFIG, indent=2) + "\n")
        written.append(config)
    return written
