"""The management API under `/api/v1/exec/`: one module per namespace of the reference API.

- `app.py` builds the API app from the namespace routers; `runtime.app.App` mounts it once.
- `services.py` is what the handlers work with (typed, built by the process's lifespan);
  `deps.py` hands it and the request's tenant to handlers.
- `errors.py` answers every failure as the server's one JSON error shape.
- One module per namespace (`health.py`, …): its pydantic models first, then its router, then
  thin handlers over domain code that lives where its concept does (`catalog/`, `compiler/`,
  `observe/`).

Nothing is imported here, so the rest of the server can import `runtime.api.services` without
loading FastAPI.
"""
