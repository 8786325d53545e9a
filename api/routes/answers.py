"""``POST /v1/retrieve`` and ``POST /v1/answer`` (JSON or server-sent events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import Services, services
from api.errors import ERRORS, ApiError, answer_responses
from api.schemas import AnswerRequest, AnswerResponse, RetrieveRequest, RetrieveResponse
from api.streaming import event_stream, final_answer, sse
from rag.types import AnswerEvent

router = APIRouter(tags=["rag"])


@router.post("/v1/retrieve", response_model=RetrieveResponse, responses=ERRORS)
async def retrieve(body: RetrieveRequest, svc: Services = Depends(services)) -> Any:  # noqa: B008
    """Hybrid (keyword + dense) search: the best paragraphs for the query, best first."""
    from rag.retrieval import validate_query

    max_k = svc.settings.api.max_k
    if body.k is not None and body.k > max_k:
        raise ApiError(400, f"k must be at most {max_k} (RAG_API__MAX_K)")
    validate_query(body.query, max_chars=svc.settings.retrieval.max_query_chars, k=body.k)
    passages = await run_in_threadpool(
        svc.retriever().search, body.query, k=body.k, sources=body.sources
    )
    return JSONResponse({"passages": [p.to_dict() for p in passages]})


@router.post(
    "/v1/answer",
    response_model=AnswerResponse,
    responses=answer_responses(
        "The verified answer (JSON), or with `stream: true` server-sent "
        "events: `status`, `passages`, `draft` ({tokens}), then `final` (this JSON) "
        "or `error` ({error})"
    ),
)
async def answer(
    body: AnswerRequest,
    request: Request,
    svc: Services = Depends(services),  # noqa: B008
) -> Any:
    """The verified answer with its citations, or the abstention."""
    history = [m.model_dump() for m in body.history or []]
    job = svc.submit(body.question, history)
    if not body.stream:
        final = await final_answer(job, request)
        return JSONResponse(final.to_dict())

    tokens = 0

    def on_event(event: AnswerEvent) -> bytes | None:
        nonlocal tokens
        if event.kind == "final":
            assert event.answer is not None
            return sse("final", event.answer.to_dict())
        if event.kind == "draft":
            tokens += 1  # the draft itself is unverified: only its length is reported
            return sse(
                "draft",
                {"tokens": tokens, "message": f"Drafting the answer ({tokens} tokens)…"},
            )
        if event.kind == "passages":
            return sse(
                "passages",
                {
                    "message": event.message,
                    "passages": [p.to_dict() for p in event.passages],
                },
            )
        data: dict[str, Any] = {"message": event.message}
        if event.standalone_question:
            data["standalone_question"] = event.standalone_question
        return sse("status", data)

    return event_stream(job, on_event, error_event="error")
