"""`dependencies/*`: which modules a script loads, which are there, and installing the rest.

A script may load the prelude's built-in modules, npm packages installed in its tenant's own
`node_modules` (bundled into its artefact when it compiles: `compiler.packages`) and the
tenant's imported SDKs (`sdk/<id>`). Installing runs npm on the host (`runtime.npm`); once it
is done every script of the tenant is compiled again, so the next request runs with what was
installed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from runtime import npm
from runtime.api.confined import file_errors, files_of
from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.errors import ErrorBody
from runtime.api.services import Services
from runtime.api.validate import DependencyCheck, dependency_check
from runtime.catalog.tenants import Tenant
from runtime.compiler.packages import BUILTIN_MODULES, SDK_FOLDER, package_of, sdk_of
from runtime.http.errors import HTTPError


class CheckBody(TenantFields):
    code: str | None = Field(None, description="A script's source: the modules it loads are "
                             "checked.")
    modules: str | list[str] | None = Field(
        None, description="Module names to check besides (or instead of) the code's: one, "
        "comma-separated, or an array.")


class ModuleStatus(BaseModel):
    name: str = Field(description="As the script names it, e.g. lodash/fp or node:crypto.")
    status: Literal["builtin", "installed", "missing"]
    package: str | None = Field(description="The npm package it comes from; null for a "
                                "built-in module or an SDK.")
    version: str | None = Field(None, description="The installed version, if installed.")


class CheckResult(BaseModel):
    installed: list[str] = Field(description="Loaded modules installed in the tenant's "
                                 "node_modules (or imported SDKs).")
    missing: list[str] = Field(description="Loaded modules neither built in nor installed: "
                               "dependencies/install them.")
    builtin: list[str] = Field(description="Loaded modules the sandbox provides.")
    modules: list[ModuleStatus]
    validation: DependencyCheck | None = Field(
        None, description="With `code`: the dependency check a write would make, including "
        "installed packages that cannot run in the sandbox (a Node built-in it lacks).")


class InstallBody(TenantFields):
    modules: str | list[str] = Field(
        description='One npm module spec (e.g. "lodash", "axios@1.2.3") or an array of specs. '
        "Registry packages only: file:, link:, git and URL specs are refused.")
    force: bool = Field(False, description="When true, reinstall modules that are already "
                        "present instead of reporting them as `already-installed`.")


class Installed(BaseModel):
    module: str = Field(description="The spec as asked.")
    name: str
    version: str | None = Field(description="The version now installed.")
    status: Literal["installed", "already-installed"]


class InstallResult(BaseModel):
    success: Literal[True] = True
    results: list[Installed]
    installed: list[str] = Field(description="Specs npm installed in this call.")
    alreadyInstalled: list[str]
    durationMs: float = Field(description="Time npm took (0 when nothing was run).")
    recompiled: int = Field(description="The tenant's scripts compiled again with what is "
                            "now installed.")


class BundledModule(BaseModel):
    name: str
    kind: Literal["builtin", "installed", "sdk"]
    version: str | None = None


class BundledResult(BaseModel):
    builtin: list[str] = Field(description="Modules every script may require with nothing "
                               "installed (also as node:<name>).")
    installed: list[BundledModule] = Field(description="The tenant's installed top-level "
                                           "packages, bundled into a script that loads them.")
    modules: list[BundledModule]
    count: int


NPM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (502, "npm failed for a reason of the server's (the registry unreachable...)."),
        (503, "npm is not installed on the server."),
        (504, "npm did not finish within WEXEC_NPM_TIMEOUT_S."),
    )
}
"""The answers of the endpoints that run npm, besides the API's own (`errors.RESPONSES`)."""

router = APIRouter(prefix="/dependencies", tags=["dependencies"], responses=NPM_RESPONSES)


@router.get("/bundled", summary="List Bundled Dependencies")
async def bundled(request: Request, services: ServicesDep, execId: TenantQuery = None,
                  exec_id: TenantQuery = None, subdomain: TenantQuery = None) -> BundledResult:
    """What a script of this tenant can load without installing anything more: the built-in
    modules and the packages already in its node_modules (wexec's own answer: the reference
    lists what its runtime ships)."""
    tenant = tenant_of(request, services.catalog)
    builtin = [BundledModule(name=n, kind="builtin") for n in BUILTIN_MODULES]
    present = [BundledModule(name=name, kind="installed", version=version)
               for name, version in top_level(tenant)]
    return BundledResult(builtin=list(BUILTIN_MODULES), installed=present,
                         modules=builtin + present, count=len(builtin) + len(present))


@router.post("/check", summary="Check Dependencies")
def check(request: Request, services: ServicesDep, body: CheckBody | None = None,
          execId: TenantQuery = None, exec_id: TenantQuery = None,
          subdomain: TenantQuery = None) -> CheckResult:
    """`installed` and `missing` for the modules `code` loads and the `modules` named. With
    code, `validation` also bundles the installed ones as a compile would, so a package that
    needs a Node built-in the sandbox lacks is reported, naming it."""
    body = body or CheckBody()
    tenant = tenant_of(request, services.catalog, body)
    if body.code is None and not body.modules:
        raise HTTPError(400, "missing_input", "give `code` (a script's source) or `modules` "
                        "(names to check), or both")
    validation = None
    names: list[str] = []
    if body.code is not None:
        validation = dependency_check(body.code, tenant.root, services.sandbox.compiler)
        names += [d.name for d in validation.dependencies]
    names += _names(body.modules)
    statuses = [status_of(tenant, n) for n in dict.fromkeys(names)]
    return CheckResult(
        installed=[s.name for s in statuses if s.status == "installed"],
        missing=[s.name for s in statuses if s.status == "missing"],
        builtin=[s.name for s in statuses if s.status == "builtin"],
        modules=statuses, validation=validation)


@router.post("/install", summary="Install Dependencies")
async def install(request: Request, body: InstallBody, services: ServicesDep,
                  execId: TenantQuery = None, exec_id: TenantQuery = None,
                  subdomain: TenantQuery = None) -> InstallResult:
    """Install registry packages into the tenant's node_modules with npm (install scripts
    never run), saved in its package.json (made if absent); the tenant's scripts are compiled
    again before this answers. A failing npm run is a 422 with npm's reason, one past
    WEXEC_NPM_TIMEOUT_S a 504; one tenant's installs run one at a time."""
    tenant = tenant_of(request, services.catalog, body)
    asked = [body.modules] if isinstance(body.modules, str) else body.modules
    specs = [npm.parse_spec(m) for m in asked if m.strip()]
    if not specs:
        raise HTTPError(400, "missing_input", "modules is empty; name at least one package")
    todo = [s for s in specs if body.force or npm.installed_version(tenant.root, s.name) is None]
    took = 0.0
    if todo:
        took = await run_install(services, tenant, [str(s) for s in todo],
                                 ["--force"] if body.force else [])
    recompiled = await republish(services, tenant)
    results = [Installed(module=str(s), name=s.name,
                         version=npm.installed_version(tenant.root, s.name),
                         status="installed" if s in todo else "already-installed")
               for s in specs]
    return InstallResult(results=results, installed=[str(s) for s in todo],
                         alreadyInstalled=[str(s) for s in specs if s not in todo],
                         durationMs=round(took, 1), recompiled=recompiled)


# -- shared with package/* ------------------------------------------------------------------

async def run_install(services: Services, tenant: Tenant, args: list[str],
                      flags: list[str]) -> float:
    """`npm install <args> <flags>` in the tenant's folder, a package.json made first if it
    has none (npm would otherwise climb to a parent folder's); its duration in ms."""
    if not tenant.root.is_dir():
        raise HTTPError(404, "unknown_tenant", f"tenant {tenant.name} has no folder yet; "
                        "write a script first", tenant=tenant.name)
    npm.check_project(tenant.root)
    if npm.read_manifest(tenant.root) is None:
        write_manifest(services, tenant, default_manifest(tenant))
    done = await npm.run(tenant.root, ["install", *args, *flags],
                         services.settings.npm_timeout_s)
    if done.returncode != 0:
        raise npm.failed(done, f"npm install {' '.join(args)}".rstrip())
    return done.duration_ms


def write_manifest(services: Services, tenant: Tenant, manifest: dict[str, object]) -> None:
    """Replace the tenant's package.json, atomically, as npm formats it."""
    with file_errors(npm.MANIFEST):
        files_of(services, tenant).write(
            npm.MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode(), create_dirs=False)


def default_manifest(tenant: Tenant) -> dict[str, object]:
    return {"name": f"wexec-{tenant.slug}", "version": "1.0.0", "private": True,
            "description": f"npm packages of the wexec tenant {tenant.name}",
            "dependencies": {}}


async def republish(services: Services, tenant: Tenant) -> int:
    """Compile every script of the tenant again (its packages changed); how many there are."""
    scripts = services.catalog.view.tenants.get(tenant.name)
    paths = sorted(set(scripts.scripts) | set(scripts.tried)) if scripts is not None else []
    services.sandbox.compiler.invalidate(tenant.root)
    await services.publish(tenant, *paths)
    return len(paths)


def top_level(tenant: Tenant) -> list[tuple[str, str]]:
    """The tenant's installed top-level packages and their versions, sorted by name."""
    modules = tenant.root / "node_modules"
    names: list[str] = []
    if modules.is_dir():
        for entry in sorted(modules.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.name.startswith("@") and entry.is_dir():
                names += [f"{entry.name}/{sub.name}" for sub in sorted(entry.iterdir())]
            else:
                names.append(entry.name)
    versions = ((n, npm.installed_version(tenant.root, n)) for n in names)
    return [(n, v) for n, v in versions if v is not None]


def status_of(tenant: Tenant, name: str) -> ModuleStatus:
    if name.removeprefix("node:") in BUILTIN_MODULES:
        return ModuleStatus(name=name, status="builtin", package=None)
    sdk = sdk_of(name)
    if sdk is not None:
        there = (tenant.root / SDK_FOLDER / f"{sdk}.ts").is_file()
        return ModuleStatus(name=name, status="installed" if there else "missing", package=None)
    package = package_of(name)
    version = npm.installed_version(tenant.root, package) if package is not None else None
    return ModuleStatus(name=name, status="installed" if version else "missing",
                        package=package, version=version)


def _names(modules: str | list[str] | None) -> list[str]:
    if modules is None:
        return []
    items = modules if isinstance(modules, list) else modules.split(",")
    return [m.strip() for m in items if m.strip()]

