"""A tenant's files as handlers use them: `catalog.files.TenantFiles`, its refusals answered as
the API's JSON errors (a path leaving the tenant is the reference's `403 Path is excluded from
access`)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from runtime.api.services import Services
from runtime.catalog.confine import OutsideRoot
from runtime.catalog.files import TenantFiles
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError


def files_of(services: Services, tenant: Tenant) -> TenantFiles:
    """The files of `tenant`, with the server's cap on entries listed at once."""
    return TenantFiles(tenant.root, services.settings.max_tenant_entries)


@contextmanager
def answering(path: str) -> Iterator[None]:
    """Turn what the file layer refuses about `path` into the HTTPError a caller can act on."""
    try:
        yield
    except OutsideRoot as exc:
        raise HTTPError(403, "path_excluded", f"Path is excluded from access: {exc}",
                        path=path) from None
    except FileNotFoundError as exc:
        raise HTTPError(404, "not_found", str(exc), path=path) from None
    except FileExistsError as exc:
        raise HTTPError(409, "exists", str(exc), path=path) from None
    except (IsADirectoryError, NotADirectoryError) as exc:
        raise HTTPError(409, "wrong_kind", str(exc), path=path) from None
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EFBIG):
            raise HTTPError(409, "conflict", str(exc), path=path) from None
        raise
