"""`/api/v1/exec/logs/*`: a tenant's request logs, listed, read, searched, streamed, cleared.

The reference's paths, parameters and fields; a tenant sees only its own files
(`observe.logfiles`), rotated compressed ones read like the current one, and a regular
expression is RE2's (`observe.logquery`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.services import Services
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError
from runtime.observe import logfiles, logquery
from runtime.observe.logfiles import FileType, LogFile

MAX_LINES = 10_000
MAX_MATCHES = 10_000


class LogFileInfo(BaseModel):
    file: str = Field(description="The file's name, as `file` takes it elsewhere.")
    size: int = Field(description="Bytes on disk (compressed, for a rotated file).")
    modified: str = Field(description="When it was last written (ISO 8601, UTC).")
    type: Literal["current", "rotated"]
    compressed: bool


class LogList(BaseModel):
    logs: list[LogFileInfo]
    count: int
    totalSize: int = Field(description="Bytes all the tenant's log files take.")


class ReadBody(TenantFields):
    file: str | None = Field(None, description="A file from logs/list; default the current one.")
    executionId: str | None = Field(
        None, description="Only this request's line: the `id` every line carries."
    )
    lines: int = Field(100, ge=1, le=MAX_LINES, description="Most lines answered.")
    tail: bool = Field(True, description="The last lines (true) or the first.")
    search: str | None = Field(None, description="Only lines containing this (any case).")


class ReadAnswer(BaseModel):
    file: str
    lines: list[Any] = Field(description="Each line as its JSON object (its text if not JSON).")
    count: int


class SearchBody(TenantFields):
    query: str | None = Field(None, description="Lines containing this text.")
    regex: str | None = Field(
        None, description="Lines matching this RE2 regular expression (no backreferences or "
        "lookaround: matching is linear-time, so no pattern can hang the server).",
    )
    files: list[str] | None = Field(
        None, description="Files to search, from logs/list; default all the tenant's, newest "
        "first (rotated compressed files included)."
    )
    limit: int = Field(1000, ge=1, le=MAX_MATCHES, description="Most matches answered.")
    caseSensitive: bool = False


class SearchMatch(BaseModel):
    file: str
    line: int = Field(description="Line number in its file, from 1.")
    entry: Any


class SearchAnswer(BaseModel):
    matches: list[SearchMatch]
    count: int
    files: list[str] = Field(description="The files searched, in order.")
    truncated: bool = Field(description="More lines matched than `limit`.")
    timedOut: bool = Field(description="The search stopped at its time budget (10 s).")


class ClearAnswer(BaseModel):
    cleared: list[str]
    count: int
    freedBytes: int


router = APIRouter(prefix="/logs", tags=["logs"])


@router.get("/list", summary="List Logs")
async def list_logs(
    request: Request, services: ServicesDep,
    type: Annotated[FileType, Query(description="`current`, `rotated` or `all`.")] = "all",
    limit: Annotated[int, Query(ge=1, le=1000, description="Most files listed.")] = 100,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> LogList:
    """The tenant's log files, the current one first. `count` is 0 until a request logged.

    Differences from the reference: the files are the tenant's own request logs only; `type` is
    `current`, `rotated` or `all`; each entry adds `type` and `compressed`."""
    tenant = tenant_of(request, services.catalog)
    services.access_log.flush()
    files = logfiles.tenant_files(services.access_log.logs_dir, tenant.slug, type)
    return LogList(
        logs=[_info(f) for f in files[:limit]], count=len(files),
        totalSize=sum(f.size for f in files),
    )


@router.post("/read", summary="Read Log")
async def read_log(
    request: Request, body: ReadBody, services: ServicesDep,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> ReadAnswer:
    """Lines of one file: the last `lines` (or the first, `tail: false`), each as its JSON
    object; rotated, compressed files read like the current one.

    Differences from the reference: `executionId` is the request id every line carries (`id`);
    `lines` is at most 10,000."""
    tenant = tenant_of(request, services.catalog, body)
    file = _file(services, tenant, body.file)
    found = await asyncio.to_thread(
        logquery.read, file, body.lines, body.tail, body.executionId, body.search
    )
    return ReadAnswer(file=file.name, lines=found, count=len(found))


@router.post("/search", summary="Search Logs")
async def search_logs(
    request: Request, body: SearchBody, services: ServicesDep,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> SearchAnswer:
    """Lines of the tenant's files containing `query` and matching `regex` (both, if both are
    given), newest file first, compressed ones included.

    Differences from the reference: `regex` is RE2 syntax (no backreferences or lookaround),
    and one RE2 cannot compile is a 400 naming why; a search stops after 10 s (`timedOut`);
    `limit` is at most 10,000."""
    tenant = tenant_of(request, services.catalog, body)
    if not body.query and not body.regex:
        raise HTTPError(400, "invalid_search", "give a query (text) or a regex to search for")
    try:
        match = logquery.Matcher.of(body.query, body.regex, body.caseSensitive)
    except logquery.BadPattern as exc:
        raise HTTPError(
            400, "invalid_regex",
            f"regex {body.regex!r} cannot be compiled: {exc} (RE2 syntax: no backreferences "
            "or lookaround)", regex=body.regex,
        ) from None
    if body.files is None:
        services.access_log.flush()
        files = logfiles.tenant_files(services.access_log.logs_dir, tenant.slug)
    else:
        files = [_file(services, tenant, name) for name in body.files]
    found = await asyncio.to_thread(logquery.search, files, match, body.limit)
    return SearchAnswer(
        matches=[SearchMatch(**m) for m in found.matches], count=len(found.matches),
        files=found.searched, truncated=found.truncated, timedOut=found.timed_out,
    )


@router.get("/stream", summary="Stream Logs", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "One `data:` event per line."}})
async def stream_logs(
    request: Request, services: ServicesDep,
    file: Annotated[str | None, Query(description="A file from logs/list; default the current.")
                    ] = None,
    follow: Annotated[bool, Query(description="Keep the stream open and send each line as it "
                                  "is written, across rotations.")] = False,
    lines: Annotated[int, Query(ge=0, le=MAX_LINES, description="Lines already in the file "
                                "sent first (not in the reference; default 100).")] = 100,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> StreamingResponse:
    """Server-sent events, one `data:` event per line: the file's last `lines` lines, then with
    `follow=true` every line written after the client connected (within about 0.3 s), across
    rotations, with a comment every 15 s while nothing is written. A follow stream ends after
    10 minutes: reconnect to go on (EventSource does so by itself).

    Differences from the reference: `file` defaults to the tenant's current file; `lines` (the
    past lines sent first) is ours."""
    tenant = tenant_of(request, services.catalog)
    logs_dir = services.access_log.logs_dir
    if file is None and logfiles.resolve(logs_dir, tenant.slug, logfiles.current_name(tenant.slug)
                                         ) is None:
        (logs_dir).mkdir(parents=True, exist_ok=True)  # nothing logged yet: follow what comes
        (logs_dir / logfiles.current_name(tenant.slug)).touch(0o600)
    chosen = _file(services, tenant, file)
    history = (await asyncio.to_thread(logquery.read, chosen, lines, True, None, None)
               if lines else [])
    return StreamingResponse(
        logquery.follow(logs_dir, tenant.slug, chosen.name, history, follow),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.delete("/clear", summary="Clear Logs")
async def clear_logs(
    request: Request, services: ServicesDep,
    file: Annotated[str | None, Query(description="One file from logs/list.")] = None,
    type: Annotated[FileType, Query(description="`current`, `rotated` or `all` (default).")
                    ] = "all",
    olderThanDays: Annotated[float | None, Query(ge=0, description="Only files last written "
                                                 "more than this many days ago.")] = None,
    confirm: Annotated[bool, Query(description="Must be true.")] = False,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> ClearAnswer:
    """Remove rotated files and empty the current one. Needs `confirm=true`.

    Differences from the reference: the current file is emptied, not removed (every server
    process keeps appending to it); only the tenant's own files are touched."""
    if not confirm:
        raise HTTPError(400, "confirm_required", "confirm=true parameter required for safety: "
                        "clearing logs cannot be undone")
    tenant = tenant_of(request, services.catalog)
    services.access_log.flush()
    if file is not None:
        files = [_file(services, tenant, file)]
    else:
        files = logfiles.tenant_files(services.access_log.logs_dir, tenant.slug, type)
    cleared = await asyncio.to_thread(logquery.clear, files, olderThanDays)
    return ClearAnswer(cleared=[f.name for f in cleared], count=len(cleared),
                       freedBytes=sum(f.size for f in cleared))


def _file(services: Services, tenant: Tenant, name: str | None) -> LogFile:
    """The tenant's file `name` (default its current one), or a 404 saying where to look."""
    services.access_log.flush()
    wanted = name if name is not None else logfiles.current_name(tenant.slug)
    found = logfiles.resolve(services.access_log.logs_dir, tenant.slug, wanted)
    if found is None:
        raise HTTPError(
            404, "log_not_found",
            f"tenant {tenant.name} has no log file {wanted!r}"
            + ("" if name is not None else " yet (no request has been logged)")
            + "; GET logs/list names its files", file=wanted,
        )
    return found


def _info(file: LogFile) -> LogFileInfo:
    return LogFileInfo(
        file=file.name, size=file.size,
        modified=datetime.fromtimestamp(file.modified, UTC).isoformat(timespec="seconds"),
        type="rotated" if file.rotated else "current", compressed=file.compressed,
    )
