"""``GET /v1/models`` and ``POST /v1/chat/completions``: the OpenAI-compatible routes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.sse import format_sse_event

from api.deps import Services, services
from api.errors import ERRORS, ApiError, answer_responses, one_line
from api.schemas import MODEL_ID, ChatCompletionRequest, ChatCompletionResponse, ModelList
from api.streaming import event_stream, final_answer, sse
from rag.types import Answer, AnswerEvent

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=ModelList, responses=ERRORS)
async def models(svc: Services = Depends(services)) -> dict[str, Any]:  # noqa: B008
    """The one model this server offers (OpenAI format)."""
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": svc.created, "owned_by": MODEL_ID}],
    }


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionResponse,
    responses=answer_responses(
        "A chat completion, or with `stream: true` OpenAI chunks; "
        "progress travels as SSE comments, the verified answer in one content chunk, "
        "the citations in the last chunk"
    ),
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    svc: Services = Depends(services),  # noqa: B008
) -> Any:
    """OpenAI-compatible chat: the last user message is the question, earlier turns the
    history. The content is the verified answer with inline markers [n]."""
    try:
        question, history = body.question_and_history()
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    job = svc.submit(question, history)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    now = int(time.time())

    def extras(final: Answer) -> dict[str, Any]:
        return final.to_dict(fields=("citations", "abstained"))

    if not body.stream:
        final = await final_answer(job, request)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": now,
                "model": MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": final.text},
                        "finish_reason": "stop",
                    }
                ],
                **extras(final),
            }
        )

    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
        return sse(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": now,
                "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            },
        )

    def on_event(event: AnswerEvent) -> bytes | None:
        if event.kind == "final":
            assert event.answer is not None
            return chunk({"content": event.answer.text}, None) + chunk(
                {}, "stop", **extras(event.answer)
            )
        if event.kind == "draft":
            return None  # progress only; comments for every token would be noise
        # progress for raw SSE readers; OpenAI clients skip comment lines
        return format_sse_event(comment=one_line(event.message))

    return event_stream(
        job,
        on_event,
        error_event=None,
        head=chunk({"role": "assistant", "content": ""}, None),
        tail=b"data: [DONE]\n\n",
    )
