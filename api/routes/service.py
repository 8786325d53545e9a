"""``GET /healthz`` and ``GET /v1/status``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import Services, services
from api.errors import ERRORS
from rag.settings import Settings

router = APIRouter(tags=["service"])


def _llm_description(settings: Settings) -> dict[str, Any]:
    s = settings.llm
    if s.backend == "openai":
        return {"backend": "openai", "model": s.model, "base_url": s.base_url}
    from rag.llm import QWEN_FILENAME

    return {"backend": "llamacpp", "model": str(s.model_path) if s.model_path else QWEN_FILENAME}


@router.get("/healthz", responses={401: ERRORS[401]})
async def healthz() -> dict[str, str]:
    """Liveness: the server answers. Loads no model."""
    return {"status": "ok"}


@router.get("/v1/status", responses=ERRORS)
async def status(svc: Services = Depends(services)) -> dict[str, Any]:  # noqa: B008
    """The index (as `rag status --json`), the models, and the answer queue."""
    from rag.status import index_status

    st = await run_in_threadpool(index_status, svc.settings)
    return {
        **st.to_dict(),
        "llm": _llm_description(svc.settings),
        "queue": svc.queue.stats(),
    }
