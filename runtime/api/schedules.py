"""`schedules/*`: the scripts that run on their `// @schedule`, firing one now, reloading them,
and their history (`runtime.schedules`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from runtime.api.confined import file_errors, files_of
from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.services import Services
from runtime.catalog.files import parts
from runtime.catalog.routes import scan
from runtime.catalog.tenants import Tenant
from runtime.compiler.magic import MagicCommentError, parse_magic_comments
from runtime.http.errors import HTTPError
from runtime.schedules.times import iso, parse_iso

MAX_HISTORY = 1000


class ScheduleItem(BaseModel):
    scriptRel: str = Field(description="The script, relative to the tenant's folder.")
    scriptPath: str = Field(description="The script's absolute path on the server's disk, as "
                            "`schedules/trigger` accepts it.")
    expression: str = Field(description="Its five-field cron expression (UTC).")
    registeredAt: str = Field(description="When this process registered it (ISO 8601, UTC): "
                              "at start-up, or when the script was written.")
    nextRun: str = Field(description="Its next tick (ISO 8601, UTC).")
    running: bool = Field(description="A run of it is going on now, in any server process.")


class ScheduleList(BaseModel):
    schedules: list[ScheduleItem]
    count: int


class ReloadBody(TenantFields):
    dry_run: bool = Field(False, description="When true, compute the diff against the "
                          "filesystem but do not apply. Returns the same shape with {added, "
                          "kept, removed} lists.")


class Reloaded(BaseModel):
    dryRun: bool
    added: list[str] = Field(description="Scripts (relative paths) registered, or that would be.")
    kept: list[str] = Field(description="Scripts whose schedule is unchanged.")
    removed: list[str] = Field(description="Scripts unregistered, or that would be; a changed "
                               "expression is both removed and added.")


class TriggerBody(TenantFields):
    scriptPath: str = Field(description="Script path (absolute or relative to scripts-dir) of "
                            "a script with a valid @schedule directive.")
    force: bool = Field(False, description="When true, bypass the @token refusal. Use with "
                        "care — this fires the script as cron (no token auth).")


class Triggered(BaseModel):
    triggered: bool = Field(description="The script ran; false when a run of it was still "
                            "going on (status `skipped`).")
    runId: str
    status: str = Field(description="`ok`, `error`, `timeout` or `skipped`.")
    durationMs: float
    scriptRel: str
    httpStatus: int | None = Field(description="The status the script answered.")
    error: str | None = Field(description="What went wrong, when status is not `ok`.")


class History(BaseModel):
    entries: list[dict[str, Any]] = Field(description="fires.log records, newest first: `ts`, "
                                          "`scriptRel`, `trigger` (`schedule` or `manual`), "
                                          "`status` (`ok`, `error`, `timeout`, `skipped`, "
                                          "`missed`), `runId`, `tick`, `durationMs`, "
                                          "`httpStatus`, `error`, `pid`; a `missed` record adds "
                                          "`missedTicks`, `missedFrom`, `missedUntil`.")
    count: int
    truncated: bool = Field(description="More entries matched than `limit`.")


router = APIRouter(prefix="/schedules", tags=["schedules"])


@router.get("/list", summary="List Schedules")
async def list_schedules(request: Request, services: ServicesDep,
                         execId: TenantQuery = None, exec_id: TenantQuery = None,
                         subdomain: TenantQuery = None) -> ScheduleList:
    """The tenant's registered schedules, by script path. The reference names `scriptRel`,
    `expression`, `registeredAt` and the absolute `scriptPath`; wexec adds `nextRun` (the next
    tick, UTC) and `running` (a run going on in any server process). Schedules are per tenant,
    as everything here: a tenant sees its own."""
    tenant = tenant_of(request, services.catalog)
    schedules = services.schedules
    schedules.sync(tenant.name)
    items = [
        ScheduleItem(scriptRel=reg.script, scriptPath=str(tenant.root / reg.script),
                     expression=reg.expression, registeredAt=iso(reg.registered_at),
                     nextRun=iso(next_run), running=schedules.running(tenant.name, reg.script))
        for reg, next_run in schedules.registrations(tenant.name)
    ]
    return ScheduleList(schedules=items, count=len(items))


@router.post("/reload", summary="Reload Schedules")
async def reload(request: Request, services: ServicesDep, body: ReloadBody | None = None,
                 execId: TenantQuery = None, exec_id: TenantQuery = None,
                 subdomain: TenantQuery = None) -> Reloaded:
    """Read the tenant's scripts from disk now and register what carries `@schedule` (the
    server also follows its scripts on its own, within its reload interval). `dry_run` reads
    the directives from the files without compiling or changing anything: a script whose new
    version does not compile is shown as the files say, while reload keeps serving (and
    scheduling) its previous version."""
    body = body or ReloadBody()
    tenant = tenant_of(request, services.catalog, body)
    if body.dry_run:
        wanted = await asyncio.to_thread(_on_disk, services, tenant)
        diff = services.schedules.plan(tenant.name, wanted)
    else:
        diff = await services.publish(tenant)
    return Reloaded(dryRun=body.dry_run, added=diff.added, kept=diff.kept, removed=diff.removed)


@router.post("/trigger", summary="Trigger Schedule")
async def trigger(request: Request, body: TriggerBody, services: ServicesDep,
                  execId: TenantQuery = None, exec_id: TenantQuery = None,
                  subdomain: TenantQuery = None) -> Triggered:
    """Run a scheduled script now, as its schedule would (`metadata.trigger` is `schedule`),
    and answer when it finished (so a long run keeps this call open, up to the script's
    `@timeout`). A run still going on is not overlapped: the answer is `triggered: false`,
    status `skipped`. Recorded in history with trigger `manual`. Where the reference is silent,
    wexec answers: 404 `not_found` for a script not served, 400 `not_scheduled` for one without
    a valid `@schedule` (or disabled), 403 `token_protected` for a `@token` script without
    `force: true`, 403 for a path outside the tenant's folder; `status` is `ok` (the script
    answered below 500), `error` (it threw, answered 5xx or failed mid-stream), `timeout` or
    `skipped`, with `httpStatus` and `error` added."""
    tenant = tenant_of(request, services.catalog, body)
    rel = _relative(tenant, body.scriptPath)
    table = services.catalog.view.tenants.get(tenant.name)
    script = table.scripts.get(rel) if table is not None else None
    if script is None:
        raise HTTPError(404, "not_found", f"no script {rel} is served in {tenant.name}; "
                        "check the path (scripts/list shows them)", scriptPath=body.scriptPath)
    services.schedules.sync(tenant.name)
    if not any(reg.script == rel for reg, _ in services.schedules.registrations(tenant.name)):
        raise HTTPError(400, "not_scheduled", f"{rel} has no valid // @schedule directive (or "
                        "is disabled, or does not compile); add one, e.g. // @schedule */5 * * * *",
                        scriptPath=body.scriptPath)
    policy = script.policy
    if policy is not None and policy.token_digest is not None and not body.force:
        raise HTTPError(403, "token_protected", f"{rel} is protected by // @token; pass "
                        "force: true to fire it as its schedule would, without the token",
                        scriptPath=body.scriptPath)
    fire = await services.schedules.run(tenant.name, rel, "manual")
    return Triggered(triggered=fire.status != "skipped", runId=fire.run_id, status=fire.status,
                     durationMs=fire.duration_ms, scriptRel=rel, httpStatus=fire.http_status,
                     error=fire.error)


@router.get("/history", summary="Schedule History")
async def history(
    request: Request, services: ServicesDep,
    scriptPath: Annotated[str | None, Query(description="Filter entries to a specific script "
                                            "(relative to scripts-dir, or absolute).")] = None,
    since: Annotated[str | None, Query(description="ISO 8601 lower bound on `ts`.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY, description="Max entries to return. "
                                "Default 100, hard max 1000.")] = 100,
    includeRotated: Annotated[bool, Query(description="When true, also scan rotated "
                                          "fires.*.log.zst files (slower).")] = False,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> History:
    """The tenant's fires, skips and missed ticks from fires.log, newest first, with `count`
    and `truncated` (more matched than `limit`). Every process of the server writes the same
    file; past 1 MiB it is rotated to `fires.{UTC time}.log.zst` (zstd), read back transparently
    with `includeRotated`, the oldest going past 8 MiB. Ticks that passed while no server ran
    are one `missed` entry, recorded at the next start-up, never run."""
    tenant = tenant_of(request, services.catalog)
    rel = _relative(tenant, scriptPath) if scriptPath is not None else None
    lower = _since(since)

    def wanted(record: dict[str, Any]) -> bool:
        return ((rel is None or record.get("scriptRel") == rel)
                and (lower is None or _at(record) >= lower))

    matched = await asyncio.to_thread(services.schedules.fires(tenant).newest, limit + 1,
                                      include_rotated=includeRotated, wanted=wanted)
    return History(entries=matched[:limit], count=min(len(matched), limit),
                   truncated=len(matched) > limit)


def _on_disk(services: Services, tenant: Tenant) -> dict[str, str]:
    """The `@schedule` of every enabled script in the tenant's folder, as its file says."""
    files = files_of(services, tenant)
    wanted = {}
    for rel in scan(tenant.root, services.settings.max_tenant_entries).found:
        try:
            magic = parse_magic_comments(files.read(rel).decode("utf-8", "replace"))
        except (OSError, MagicCommentError):
            continue  # unreadable or invalid: it would not be served, so not scheduled
        if magic.schedule is not None and magic.enabled:
            wanted[rel] = magic.schedule
    return wanted


def _relative(tenant: Tenant, script_path: str) -> str:
    """A script path as the tenant's folder names it: relative, or absolute inside the folder."""
    path = script_path
    if path.startswith("/"):
        try:
            path = Path(path).relative_to(tenant.root).as_posix()
        except ValueError:
            raise HTTPError(403, "forbidden", f"Path is excluded from access: {script_path} is "
                            f"not inside the tenant's folder {tenant.root}",
                            path=script_path) from None
    with file_errors(script_path):
        return "/".join(parts(path))


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise HTTPError(400, "invalid_since", f"since={text!r} is not an ISO 8601 time; give "
                        "one like 2026-01-31T12:00:00Z", since=text) from None


def _at(record: dict[str, Any]) -> datetime:
    try:
        return parse_iso(str(record.get("ts")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
