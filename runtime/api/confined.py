"""A tenant's files as handlers use them: `catalog.files.TenantFiles`, its refusals answered as
the API's JSON errors (a path leaving the tenant is the reference's `403 Path is excluded from
access`)."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from runtime.api.services import Services
from runtime.catalog.confine import OutsideRoot
from runtime.catalog.files import TenantFiles, parts
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError


def files_of(services: Services, tenant: Tenant) -> TenantFiles:
    """The tenant's confined files."""
    return TenantFiles(tenant.root, services.settings.max_tenant_entries)


@contextlib.contextmanager
def file_errors(path: str) -> Iterator[None]:
    """The file layer's refusals as the API's JSON errors, each saying what to change."""
    try:
        yield
    except OutsideRoot as exc:
        raise HTTPError(403, "forbidden", f"Path is excluded from access: {exc}",
                        path=path) from None
    except FileNotFoundError as exc:
        raise HTTPError(404, "not_found", str(exc), path=path) from None
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise HTTPError(409, "conflict", str(exc), path=path) from None
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise HTTPError(413, "too_large", exc.strerror or str(exc), path=path) from None
        if exc.errno == errno.ENOTEMPTY:
            raise HTTPError(409, "conflict", exc.strerror or str(exc), path=path) from None
        raise


def read_text(files: TenantFiles, path: str) -> str:
    """A file of the tenant as text (bytes that are not UTF-8 shown as U+FFFD)."""
    with file_errors(path):
        return files.read(path).decode("utf-8", "replace")


def exists(files: TenantFiles, path: str) -> bool:
    """Whether anything is at `path` (a file, folder or link) in the tenant's folder."""
    names = parts(path)
    if not names:
        return False  # the tenant's folder itself: not a place a file can be
    *folder, name = names
    try:
        entries = files.entries("/".join(folder))
    except (FileNotFoundError, NotADirectoryError):
        return False
    return any(entry.path.rsplit("/", 1)[-1] == name for entry in entries)
