"""File-based routing: which script answers a URL path.

`a/b.ts` serves `/a/b`, `index.ts` its folder, `[id]` one segment, `[...slug]` one or more,
`[[...slug]]` zero or more. When several routes match, the one whose segments rank first wins,
segment by segment: static before dynamic before catch-all, so a deeper static prefix wins.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from runtime.catalog.confine import inside, resolved
from runtime.types import Query

SCRIPT_SUFFIXES = (".ts", ".js")
"""Only these are ever executed; `.d.ts` declares types and is never a route."""

STATIC, DYNAMIC, CATCH_ALL, OPTIONAL_CATCH_ALL = range(4)

_DYNAMIC = re.compile(r"^\[([A-Za-z_$][\w$]*)\]$")
_CATCH_ALL = re.compile(r"^\[\.\.\.([A-Za-z_$][\w$]*)\]$")
_OPTIONAL_CATCH_ALL = re.compile(r"^\[\[\.\.\.([A-Za-z_$][\w$]*)\]\]$")


def is_script(name: str) -> bool:
    """A file name the router serves: `.ts`/`.js`, not `.d.ts`, not hidden or private."""
    return (
        name.endswith(SCRIPT_SUFFIXES)
        and not name.endswith(".d.ts")
        and not name.startswith((".", "_"))
    )


Stat = tuple[int, int]
"""A script file's (mtime_ns, size): when it changes, the script is compiled again."""


@dataclass(slots=True)
class Scan:
    """What a tenant's folder holds: the scripts to serve, and what was left out and why."""

    found: dict[str, Stat] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class _Skip(Exception):
    pass


def scan(root: Path, max_entries: int) -> Scan:
    """Every routable script under `root` as relative POSIX path → (mtime_ns, size).

    Hidden and `_private` folders and `node_modules` are skipped: they hold helpers and
    dependencies, not endpoints. Links are followed only where they resolve inside `root`; a
    link out of it, a folder link back to a folder it is in (a loop), an entry that cannot be
    read, and whatever lies past `max_entries` are skipped, each named in `skipped`. `root`
    must be a resolved path: a tenant folder that became a link is not scanned at all.
    """
    result = Scan()
    real_root = resolved(root)
    if real_root is None:
        result.skipped["."] = "the tenant's folder is a link; tenant folders must be real folders"
        return result
    stack = [("", real_root)]  # each folder still to read: relative path, resolved path
    entries = 0
    while stack:
        rel_dir, real_dir = stack.pop()
        try:
            listing = list(os.scandir(real_dir))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            result.skipped[rel_dir or "."] = f"cannot be read ({exc.strerror})"
            continue
        for entry in listing:
            name = entry.name
            if name.startswith((".", "_")) or name == "node_modules":
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            entries += 1
            if entries > max_entries:
                result.skipped[rel_dir or "."] = (
                    f"more than {max_entries} entries in the folder; the rest are not served "
                    "(WEXEC_MAX_TENANT_ENTRIES)"
                )
                return result
            try:
                real = entry.path
                if entry.is_symlink():
                    real = os.path.realpath(real, strict=True)
                    if not inside(real, real_root):
                        raise _Skip("a link that leads out of the tenant's folder")
                if entry.is_dir():
                    if inside(real_dir, real):
                        raise _Skip("a link to a folder it is in (a loop)")
                    stack.append((rel, real))
                elif entry.is_file() and is_script(name):
                    st = entry.stat()
                    result.found[rel] = (st.st_mtime_ns, st.st_size)
            except _Skip as skip:
                result.skipped[rel] = str(skip)
            except FileNotFoundError:
                continue  # deleted meanwhile, or a link to nothing
            except OSError as exc:
                result.skipped[rel] = f"cannot be read ({exc.strerror})"
    return result


@dataclass(frozen=True, slots=True)
class Segment:
    kind: int
    value: str  # the literal for STATIC, the parameter name otherwise


@dataclass(frozen=True, slots=True)
class Route:
    """One script's URL pattern."""

    rel: str  # the script, relative to its tenant root
    segments: tuple[Segment, ...]

    @property
    def rank(self) -> tuple[int, ...]:
        return tuple(s.kind for s in self.segments)

    @property
    def pattern(self) -> str:
        """The route as a person writes it, e.g. `/api/users/[id]`."""
        shown = {STATIC: "{}", DYNAMIC: "[{}]", CATCH_ALL: "[...{}]", OPTIONAL_CATCH_ALL: "[[...{}]]"}
        return "/" + "/".join(shown[s.kind].format(s.value) for s in self.segments)

    def match(self, parts: list[str]) -> Query | None:
        params: Query = {}
        for i, seg in enumerate(self.segments):
            if seg.kind == STATIC:
                if i >= len(parts) or parts[i] != seg.value:
                    return None
            elif seg.kind == DYNAMIC:
                if i >= len(parts):
                    return None
                params[seg.value] = parts[i]
            else:  # a catch-all is always the last segment
                rest = parts[i:]
                if seg.kind == CATCH_ALL and not rest:
                    return None
                params[seg.value] = rest
                return params
        return params if len(parts) == len(self.segments) else None


class RouteError(ValueError):
    """A file name that cannot be a route (e.g. a catch-all that is not last)."""


def route_for(rel: str) -> Route:
    """The route a script file serves."""
    stem = rel.rsplit(".", 1)[0]
    names = stem.split("/")
    if names[-1] == "index":
        names.pop()
    segments: list[Segment] = []
    for i, name in enumerate(names):
        if m := _OPTIONAL_CATCH_ALL.match(name):
            seg = Segment(OPTIONAL_CATCH_ALL, m.group(1))
        elif m := _CATCH_ALL.match(name):
            seg = Segment(CATCH_ALL, m.group(1))
        elif m := _DYNAMIC.match(name):
            seg = Segment(DYNAMIC, m.group(1))
        elif "[" in name or "]" in name:
            raise RouteError(f"{rel}: {name!r} is not a route segment; use [name], [...name] or [[...name]]")
        else:
            seg = Segment(STATIC, name)
        if seg.kind in (CATCH_ALL, OPTIONAL_CATCH_ALL) and i != len(names) - 1:
            raise RouteError(f"{rel}: a catch-all segment must be the last one")
        segments.append(seg)
    return Route(rel, tuple(segments))


def split_path(path: str) -> list[str]:
    """URL path → decoded segments; empty segments (`//`, trailing `/`) are dropped."""
    return [unquote(p) for p in path.split("/") if p]


class RouteTable:
    """An immutable set of routes; rebuilt, never mutated, when scripts change."""

    def __init__(self, routes: list[Route]) -> None:
        ordered = sorted(routes, key=lambda r: (r.rank, r.rel.endswith(".js"), r.rel))
        self._static: dict[str, Route] = {}
        self._patterns: list[Route] = []
        for route in ordered:
            if all(s.kind == STATIC for s in route.segments):
                key = "/" + "/".join(s.value for s in route.segments)
                self._static.setdefault(key, route)  # `a.ts` before `a/index.ts`, `.ts` before `.js`
            else:
                self._patterns.append(route)
        self.routes = ordered

    def match(self, path: str) -> tuple[Route, Query] | None:
        if "%" not in path and "//" not in path:
            route = self._static.get(path)  # a hit is already in the form split_path gives
            if route is not None:
                return route, {}
        parts = split_path(path)
        route = self._static.get("/" + "/".join(parts))
        if route is not None:
            return route, {}
        for route in self._patterns:
            params = route.match(parts)
            if params is not None:
                return route, params
        return None
