"""`GET /api/v1/exec/types`: the declarations of every global a script sees (`wexec.d.ts`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from runtime import typings

router = APIRouter(tags=["types"])

MEDIA_TYPE = "application/typescript; charset=utf-8"


@router.get(
    "/types", summary="TypeScript declarations of the globals scripts see",
    description="The `wexec.d.ts` that `wexec types DIR` writes (wexec's addition; the "
                "reference has no such endpoint): save it beside your scripts so editors and "
                "`tsc --noEmit` type-check `req`, `res`, `metadata`, `shared`, `fetch`, `fs`, "
                "the AI helpers, `isolate`, `require` and the Web APIs.",
    response_class=PlainTextResponse,
    responses={200: {"content": {MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
def types() -> PlainTextResponse:
    return PlainTextResponse(
        typings.declarations(), media_type=MEDIA_TYPE,
        headers={"content-disposition": f'inline; filename="{typings.FILE_NAME}"'},
    )
