"""The wire format of the HTTP API: request bodies, and the response shapes shown in /docs.

Responses are built from the library's own serialisers (``Passage.to_dict``,
``Answer.to_dict``, ``IndexStatus.to_dict``), so a field added to those types appears in the
API without a change here. The response models below document those shapes for the OpenAPI
schema; ``Passage``, ``Citation`` and ``Timings`` are the library's dataclasses themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.types import Citation, Passage, Timings

MODEL_ID = "groundedchat"


class HistoryMessage(BaseModel):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class RetrieveRequest(BaseModel):
    """``POST /v1/retrieve``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "Kathmandu Policy Forum", "k": 3}]},
    )

    query: str = Field(description="What to look for.")
    k: int | None = Field(None, description="How many paragraphs (default RAG_RETRIEVAL__K).")
    sources: list[str] | None = Field(None, description="Only these documents (corpus paths).")


class RetrieveResponse(BaseModel):
    """The passages, best first, as ``rag.retrieve`` returns them."""

    passages: list[Passage]


class AnswerRequest(BaseModel):
    """``POST /v1/answer``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"question": "Which institution is Dr. Tenzin Wangchuk affiliated with?"}]
        },
    )

    question: str = Field(description="The question.")
    history: list[HistoryMessage] | None = Field(
        None, description="Earlier turns, oldest first, so follow-up questions work."
    )
    stream: bool = Field(
        False,
        description="Server-sent events: progress ('status', 'passages', 'draft' token counts), "
        "then one 'final' event with the verified answer, or one 'error' event.",
    )


class RetrievedRef(BaseModel):
    source: str
    paragraph: int


class AnswerResponse(BaseModel):
    """The verified answer (``rag.Answer.to_dict()``). ``answer`` carries inline markers [n]."""

    model_config = ConfigDict(extra="allow")

    answer: str
    outcome: Literal["answered", "unconfirmed", "abstained"] = Field(
        description="'answered': the source's words, cited; 'unconfirmed': the closest "
        "sentence, shown as evidence the gate could not confirm (in 'evidence'); "
        "'abstained': nothing shown."
    )
    abstained: bool
    citations: list[Citation]
    evidence: list[Citation] = []
    standalone_question: str
    retrieved: list[RetrievedRef]
    timings: Timings
    stage: str = Field(
        "", description="Which step stopped short: retrieval, reading, gate, timeout."
    )
    gate_score: float | None = None
    gate_threshold: float | None = None
    reason: str


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """An OpenAI chat message. System and developer messages are accepted and ignored: the
    assistant's own instructions always apply."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` (OpenAI-compatible). Sampling options (temperature,
    max_tokens, …) are accepted and ignored: decoding is fixed for verifiable answers."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "model": MODEL_ID,
                    "messages": [
                        {
                            "role": "user",
                            "content": "Which institution is Dr. Tenzin Wangchuk affiliated with?",
                        }
                    ],
                }
            ]
        },
    )

    model: str = Field(MODEL_ID, description=f"Any name is served by {MODEL_ID!r}.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False

    def question_and_history(self) -> tuple[str, list[dict[str, str]]]:
        """The last message (a user message) is the question; earlier user and assistant
        messages are the history. Raises ``ValueError`` when the last message is not a user's."""
        if self.messages[-1].role != "user":
            raise ValueError("the last message must have role 'user' (the question)")
        history = [
            {"role": m.role, "content": m.text()}
            for m in self.messages[:-1]
            if m.role in ("user", "assistant")
        ]
        return self.messages[-1].text(), history


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletionResponse(BaseModel):
    """An OpenAI chat completion; ``citations`` and ``abstained`` are extra fields that OpenAI
    clients ignore (the openai client exposes them as ``completion.model_extra``)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    citations: list[Citation]
    abstained: bool


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str = Field(description="One line saying what went wrong and how to fix it.")
    type: str
    code: int = Field(description="The HTTP status code.")
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """Every error, in the OpenAI error shape."""

    error: ErrorBody


def error_payload(status: int, message: str, request_id: str | None) -> dict[str, Any]:
    """The JSON body of an error response (and of an SSE ``error`` event)."""
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "server_error"),
            "code": status,
            "request_id": request_id,
        }
    }


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout",
}
