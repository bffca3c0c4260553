"""A tenant's files as handlers use them: `catalog.files.TenantFiles`, its refusals answered as
the API's JSON errors (a path leaving the tenant is the reference's `403 Path is excluded from
access`)."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from runtime.api.services import Services
from runtime.catalog.confine import OutsideRoot
from runtime.catalog.files import TenantFiles
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
