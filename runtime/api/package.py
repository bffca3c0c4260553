"""`package/*`: the tenant's package.json, read, edited, installed, compared and pinned.

The file is the tenant's `package.json`, as npm reads it; its dependencies are installed into
the tenant's own `node_modules` (`runtime.npm`: registry packages only, install scripts never
run) and bundled into the scripts that load them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from runtime import npm
from runtime.api.dependencies import (
    NPM_RESPONSES,
    default_manifest,
    republish,
    run_install,
    top_level,
    write_manifest,
)
from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.services import Services
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError

SECTIONS = ("dependencies", "devDependencies")


class PackageRead(BaseModel):
    path: Literal["package.json"] = "package.json"
    package: dict[str, Any]
    dependencies: dict[str, str]
    devDependencies: dict[str, str]
    installed: dict[str, str] = Field(description="Top-level packages in node_modules and "
                                      "their versions.")


class UpdateBody(TenantFields):
    dependencies: str | dict[str, str] | None = Field(
        None, description="Dependencies to add or change: an object {name: range}, its JSON "
        'text, or specs separated by commas ("lodash@^4, dayjs"). Registry ranges only.')
    scripts: str | dict[str, str] | None = Field(
        None, description="npm scripts to add or change: an object or its JSON text. They are "
        "stored, never run (installs use --ignore-scripts).")
    metadata: dict[str, Any] | None = Field(
        None, description="Top-level fields to set (name, version, description...); not the "
        "dependency sections, which `dependencies` and `remove` change.")
    remove: str | list[str] | None = Field(
        None, description="Packages to drop from dependencies and devDependencies: a name, "
        "comma-separated names, or an array.")


class UpdateResult(BaseModel):
    success: Literal[True] = True
    package: dict[str, Any]
    added: list[str]
    removed: list[str]
    installed: Literal[False] = Field(False, description="Editing installs nothing: call "
                                      "package/install.")


class InstallBody(TenantFields):
    packages: list[Any] = Field([], description="Specs to install (name, name@range); empty: "
                                "everything package.json lists.")
    dev: bool = Field(False, description="Save them in devDependencies.")
    save: bool = Field(True, description="Record them in package.json.")
    force: bool = Field(False, description="npm install --force.")


class PackageInstallResult(BaseModel):
    success: Literal[True] = True
    packages: list[str] = Field(description="What was asked (empty: all of package.json).")
    installed: dict[str, str] = Field(description="Top-level packages now installed.")
    durationMs: float
    recompiled: int


class CompareBody(TenantFields):
    packages: list[str] | None = Field(None, description="Compare only these; default all "
                                       "that package.json lists or node_modules holds.")


class Comparison(BaseModel):
    name: str
    declared: str | None = Field(description="The range package.json asks for.")
    installed: str | None = Field(description="The version in node_modules.")
    status: Literal["ok", "missing", "mismatch", "extraneous"] = Field(
        description="ok: installed and satisfies the range; missing: declared, not installed; "
        "mismatch: installed outside the range; extraneous: installed, not declared.")


class CompareResult(BaseModel):
    packages: list[Comparison]
    inSync: bool = Field(description="Every declared package installed within its range.")


class PinBody(TenantFields):
    packages: list[Any] = Field([], description="Names to pin; empty: every dependency.")


class PinResult(BaseModel):
    success: Literal[True] = True
    pinned: list[str] = Field(description='As "name: ^1.2.3 → 1.2.3".')
    skipped: list[str] = Field(description="Already exact, or not installed (with why).")
    package: dict[str, Any]


class InitBody(TenantFields):
    name: str = "hoody-exec-project"
    version: str = "1.0.0"
    description: str = "Hoody Exec project"
    force: bool = Field(False, description="Replace an existing package.json.")


class InitResult(BaseModel):
    success: Literal[True] = True
    created: bool
    package: dict[str, Any]


router = APIRouter(prefix="/package", tags=["package"], responses=NPM_RESPONSES)


@router.get("/read", summary="Read Package Json")
async def read(request: Request, services: ServicesDep, execId: TenantQuery = None,
               exec_id: TenantQuery = None, subdomain: TenantQuery = None) -> PackageRead:
    """The tenant's package.json and what node_modules holds; 404 if it has none
    (package/init makes one)."""
    tenant = tenant_of(request, services.catalog)
    manifest = _manifest(tenant)
    return PackageRead(package=manifest, dependencies=_section(manifest, "dependencies"),
                       devDependencies=_section(manifest, "devDependencies"),
                       installed=_installed(tenant))


@router.post("/update", summary="Update Package Json")
async def update(request: Request, body: UpdateBody, services: ServicesDep,
                 execId: TenantQuery = None, exec_id: TenantQuery = None,
                 subdomain: TenantQuery = None) -> UpdateResult:
    """Add or change dependencies and npm scripts, set top-level fields, remove packages.
    The file is made if absent; nothing is installed (package/install does)."""
    tenant = tenant_of(request, services.catalog, body)
    manifest = npm.read_manifest(tenant.root) or default_manifest(tenant)
    meta = body.metadata or {}
    if any(k in meta for k in (*SECTIONS, "scripts")):
        raise HTTPError(400, "invalid_metadata", "metadata may not set dependencies, "
                        "devDependencies or scripts; use the fields of the same name")
    manifest.update(meta)
    added = []
    deps = dict(_section(manifest, "dependencies"))
    for name, spec in _mapping(body.dependencies, "dependencies", specs=True).items():
        deps[name] = npm.check_range(name, spec)
        added.append(f"{name}@{spec}")
    manifest["dependencies"] = deps
    if body.scripts is not None:
        manifest["scripts"] = {**_section(manifest, "scripts"),
                               **_mapping(body.scripts, "scripts", specs=False)}
    removed = []
    gone = body.remove if isinstance(body.remove, list) else (body.remove or "").split(",")
    for name in (n.strip() for n in gone if n.strip()):
        for section in SECTIONS:
            entries = _section(manifest, section)
            if name in entries:
                del entries[name]
                manifest[section] = entries
                removed.append(name)
    write_manifest(services, tenant, manifest)
    return UpdateResult(package=manifest, added=added, removed=sorted(set(removed)))


@router.post("/install", summary="Install Packages")
async def install(request: Request, services: ServicesDep, body: InstallBody | None = None,
                  execId: TenantQuery = None, exec_id: TenantQuery = None,
                  subdomain: TenantQuery = None) -> PackageInstallResult:
    """`npm install` in the tenant's folder: the `packages` given, or everything package.json
    lists (whose ranges must be registry ranges). Install scripts never run; the tenant's
    scripts are compiled again before this answers."""
    body = body or InstallBody()
    tenant = tenant_of(request, services.catalog, body)
    specs = [str(npm.parse_spec(_text(p))) for p in body.packages]
    flags = (["--save-dev"] if body.dev else []) + ([] if body.save else ["--no-save"]) \
        + (["--force"] if body.force else [])
    took = await run_install(services, tenant, specs, flags)
    recompiled = await republish(services, tenant)
    return PackageInstallResult(packages=specs, installed=_installed(tenant),
                                durationMs=round(took, 1), recompiled=recompiled)


@router.post("/compare", summary="Compare Packages")
async def compare(request: Request, body: CompareBody, services: ServicesDep,
                  execId: TenantQuery = None, exec_id: TenantQuery = None,
                  subdomain: TenantQuery = None) -> CompareResult:
    """What package.json declares against what node_modules holds (npm ls, no registry
    call): the reference leaves the body open; wexec's takes `packages` to narrow it."""
    tenant = tenant_of(request, services.catalog, body)
    manifest = _manifest(tenant)
    declared = {**_section(manifest, "devDependencies"), **_section(manifest, "dependencies")}
    npm.check_project(tenant.root)
    listed = await _npm_ls(services, tenant)
    present = _installed(tenant)
    names = body.packages or sorted(set(declared) | set(present))
    rows = []
    for name in names:
        version = present.get(name)
        if name not in declared:
            status = "extraneous" if version is not None else "missing"
        elif version is None:
            status = "missing"
        else:
            status = "mismatch" if listed.get(name, {}).get("invalid") else "ok"
        rows.append(Comparison(name=name, declared=declared.get(name), installed=version,
                               status=status))
    return CompareResult(packages=rows, inSync=all(
        r.status == "ok" for r in rows if r.declared is not None))


@router.post("/pin", summary="Pin Versions")
async def pin(request: Request, services: ServicesDep, body: PinBody | None = None,
              execId: TenantQuery = None, exec_id: TenantQuery = None,
              subdomain: TenantQuery = None) -> PinResult:
    """Replace each dependency's range with the exact version installed (drops `^`/`~`), so
    later installs are deterministic."""
    body = body or PinBody()
    tenant = tenant_of(request, services.catalog, body)
    manifest = _manifest(tenant)
    wanted = {_text(p) for p in body.packages}
    pinned, skipped = [], []
    for section in SECTIONS:
        entries = _section(manifest, section)
        for name, declared in entries.items():
            if wanted and name not in wanted:
                continue
            version = npm.installed_version(tenant.root, name)
            if version is None:
                skipped.append(f"{name}: not installed")
            elif declared == version:
                skipped.append(f"{name}: already {version}")
            else:
                entries[name] = version
                pinned.append(f"{name}: {declared} → {version}")
        if entries:
            manifest[section] = entries
    unknown = wanted - {n for s in SECTIONS for n in _section(manifest, s)}
    skipped += [f"{name}: not in package.json" for name in sorted(unknown)]
    if pinned:
        write_manifest(services, tenant, manifest)
    return PinResult(pinned=pinned, skipped=skipped, package=manifest)


@router.post("/init", summary="Init Package Json")
async def init(request: Request, services: ServicesDep, body: InitBody | None = None,
               execId: TenantQuery = None, exec_id: TenantQuery = None,
               subdomain: TenantQuery = None) -> InitResult:
    """Create the tenant's package.json; one already there is a 409 unless `force`."""
    body = body or InitBody()
    tenant = tenant_of(request, services.catalog, body)
    existing = npm.read_manifest(tenant.root) if not body.force else None
    if existing is not None:
        raise HTTPError(409, "conflict", "package.json already exists; send force=true to "
                        "replace it", path=npm.MANIFEST)
    manifest = {**default_manifest(tenant), "name": body.name, "version": body.version,
                "description": body.description}
    created = not (tenant.root / npm.MANIFEST).exists()
    write_manifest(services, tenant, manifest)
    return InitResult(created=created, package=manifest)


def _text(item: Any) -> str:
    """One entry of a `packages` array: the reference types them `any`; wexec takes strings."""
    if not isinstance(item, str):
        raise HTTPError(400, "invalid_module", f"packages: {json.dumps(item)} is not a package "
                        "name or spec; give strings such as \"lodash\" or \"lodash@4\"")
    return item


def _manifest(tenant: Tenant) -> dict[str, Any]:
    manifest = npm.read_manifest(tenant.root)
    if manifest is None:
        raise HTTPError(404, "not_found", f"tenant {tenant.name} has no package.json; create "
                        "one with package/init", path=npm.MANIFEST)
    return manifest


def _section(manifest: dict[str, Any], name: str) -> dict[str, str]:
    value = manifest.get(name)
    return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _installed(tenant: Tenant) -> dict[str, str]:
    return dict(top_level(tenant))


def _mapping(value: str | dict[str, str] | None, field: str, *, specs: bool) -> dict[str, str]:
    """An object field given as an object, its JSON text or (dependencies) a spec list."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise HTTPError(400, "invalid_json", f"{field}: not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise HTTPError(400, "invalid_json", f"{field}: give a JSON object")
        return {str(k): str(v) for k, v in parsed.items()}
    if not specs:
        raise HTTPError(400, "invalid_json", f"{field}: give an object or its JSON text")
    parsed_specs = [npm.parse_spec(s) for s in text.split(",") if s.strip()]
    return {s.name: s.range or "latest" for s in parsed_specs}


async def _npm_ls(services: Services, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """npm ls's view of the top-level packages (`invalid` marks one outside its range)."""
    done = await npm.run(tenant.root, ["ls", "--json", "--depth=0"],
                         services.settings.npm_timeout_s)
    try:
        tree = json.loads(done.stdout or "{}")
    except ValueError:
        return {}
    deps = tree.get("dependencies") if isinstance(tree, dict) else None
    return deps if isinstance(deps, dict) else {}
