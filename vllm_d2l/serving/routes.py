"""The `vllm.endpoint_plugins` entry point: `/v1/documents` and `/v1/tasks`, an adapter-aware
`/v1/models`, and a small middleware that sees which model each completion request names (and
builds the composites it asks for).

Routes answer errors in vLLM's own shape (`{"error": {"message", "type", "param", "code"}}`, built
with vLLM's `create_error_response`), so clients handle ours like vLLM's. vLLM's `--api-key`
middleware guards every `/v1` path, ours included.
"""
from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import D2LError
from . import PLUGIN_NAME, get_logger
from .errors import NotReady, PayloadTooLarge, ServingError
from .ids import is_upload_id, split_composite
from .store import _shorten

log = get_logger(__name__)

STATE_KEY = "vllm_d2l"
MAX_NAME_CHARS = 256
COMPLETION_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses"})
MAX_PEEK_BYTES = 64 * 2**20  # bodies larger than this are passed on unread by the middleware
MAX_PAGE = 10_000

router = APIRouter()


# ------------------------------------------------------------------------------------- errors
def error_response(message: str, err_type: str = "BadRequestError",
                   status: HTTPStatus = HTTPStatus.BAD_REQUEST, param: str | None = None) -> JSONResponse:
    from vllm.entrypoints.serve import create_error_response

    err = create_error_response(message, err_type=err_type, status_code=status, param=param)
    return JSONResponse(content=err.model_dump(), status_code=err.error.code)


def _from_exception(e: Exception, outcome: list[str] | None = None) -> JSONResponse:
    if isinstance(e, ServingError):
        reason = {HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too_large", HTTPStatus.SERVICE_UNAVAILABLE: "not_ready"}
        if outcome is not None:
            outcome[0] = "over_rank" if type(e).__name__ == "OverRank" else reason.get(
                e.status, "bad_request" if e.status < 500 else "error")
        return error_response(str(e), e.err_type, e.status, e.param)
    if isinstance(e, D2LError):  # BadDocument, ModelMismatch, MissingModel: the input's fault
        if outcome is not None:
            outcome[0] = "bad_request"
        return error_response(str(e), "BadRequestError", HTTPStatus.BAD_REQUEST)
    log.exception("vllm-d2l: unexpected error")
    return error_response(f"internal error: {type(e).__name__}", "InternalServerError",
                          HTTPStatus.INTERNAL_SERVER_ERROR)


def _service(request: Request):
    svc = getattr(request.app.state, STATE_KEY, None)
    if svc is None:
        raise NotReady("the document service is not initialised on this server")
    return svc


# ------------------------------------------------------------------------------------- body
async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {int(declared)} bytes; this server accepts at most {limit} "
                              "(VLLM_D2L_MAX_BODY_BYTES / --max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes (VLLM_D2L_MAX_BODY_BYTES / --max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_upload(request: Request, body: bytes) -> tuple[str | bytes, str | None]:
    """JSON `{"text": ..., "name": ...}`, or the raw document with a text/plain content type."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype.startswith("text/"):
        name = request.query_params.get("name")
        return body, _check_name(name)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ServingError(f"request body is not valid JSON ({e}); send {{\"text\": \"...\"}}") from None
    if not isinstance(payload, dict):
        raise ServingError("request body must be a JSON object like {\"text\": \"...\"}")
    if "text" not in payload:
        raise ServingError("missing field 'text' (the document)", param="text")
    text = payload["text"]
    if not isinstance(text, str):
        raise ServingError(f"'text' must be a string, got {type(text).__name__}", param="text")
    return text, _check_name(payload.get("name"))


def _check_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ServingError(f"'name' must be a string, got {type(name).__name__}", param="name")
    if len(name) > MAX_NAME_CHARS or any(not c.isprintable() for c in name):
        raise ServingError(f"'name' must be printable and at most {MAX_NAME_CHARS} characters", param="name")
    return name


# ------------------------------------------------------------------------------------- routes
# Documents and task descriptions share every route but their path: `/v1/documents` and
# `/v1/tasks`, each kind with its own generator, ids (`doc-…`, `task-…`) and listing.
ROUTE_KINDS = {"documents": "document", "tasks": "task"}


async def _upload(raw_request: Request, kind: str):
    from . import metrics

    outcome = ["error"]
    try:
        svc = _service(raw_request)
        body = await _read_body(raw_request, svc.settings.max_body_bytes)
        text, name = _parse_upload(raw_request, body)
        # a task, so a client that hangs up does not cancel work other uploads may be waiting on
        result = await asyncio.ensure_future(svc.upload(text, name, kind))
        outcome[0] = "cached" if result.get("cached") else "created"
        return JSONResponse(content=result)
    except Exception as e:
        return _from_exception(e, outcome)
    finally:
        metrics.UPLOADS.labels(kind=kind, outcome=outcome[0]).inc()


async def _list(raw_request: Request, kind: str):
    """Newest first; `?limit=N&after=ID` pages through a large store (all of it without `limit`)."""
    try:
        limit, after = _page_params(raw_request)
        svc = _service(raw_request)
        page, more = paginate(await asyncio.to_thread(svc.documents, kind), limit, after)
        return JSONResponse(content=_page([svc.describe(r) for r in page], more))
    except Exception as e:
        return _from_exception(e)


async def _get(adapter_id: str, raw_request: Request, kind: str):
    try:
        return JSONResponse(content=await _service(raw_request).get(adapter_id, kind))
    except Exception as e:
        return _from_exception(e)


async def _delete(adapter_id: str, raw_request: Request, kind: str):
    try:
        return JSONResponse(content=await _service(raw_request).delete(adapter_id, kind))
    except Exception as e:
        return _from_exception(e)


def _add_routes(path: str, kind: str) -> None:
    async def create(raw_request: Request):
        return await _upload(raw_request, kind)

    async def listing(raw_request: Request):
        return await _list(raw_request, kind)

    async def describe(adapter_id: str, raw_request: Request):
        return await _get(adapter_id, raw_request, kind)

    async def delete(adapter_id: str, raw_request: Request):
        return await _delete(adapter_id, raw_request, kind)

    router.add_api_route(f"/v1/{path}", create, methods=["POST"], name=f"create_{kind}")
    router.add_api_route(f"/v1/{path}", listing, methods=["GET"], name=f"list_{kind}s")
    router.add_api_route(f"/v1/{path}/{{adapter_id:path}}", describe, methods=["GET"], name=f"get_{kind}")
    router.add_api_route(f"/v1/{path}/{{adapter_id:path}}", delete, methods=["DELETE"], name=f"delete_{kind}")


for _path, _kind in ROUTE_KINDS.items():
    _add_routes(_path, _kind)


def _page_params(request: Request) -> tuple[int | None, str | None]:
    """`limit` (1..MAX_PAGE) and `after` (an id) from the query string, as OpenAI's lists take them."""
    raw, after = request.query_params.get("limit"), request.query_params.get("after")
    limit = None
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            raise ServingError(f"'limit' must be an integer from 1 to {MAX_PAGE}", param="limit")
        limit = int(raw)
    return limit, after


def paginate(items: list, limit: int | None, after: str | None) -> tuple[list, bool]:
    """The OpenAI list convention: up to `limit` items following the one whose id is `after`
    (all of them without a limit), and whether more follow."""
    start = 0
    if after is not None:
        ids = [i["id"] if isinstance(i, dict) else i.id for i in items]
        try:
            start = ids.index(after) + 1
        except ValueError:
            raise ServingError(f"'after' names no item of this list: '{_shorten(after)}'", param="after") from None
    end = len(items) if limit is None else start + limit
    return items[start:end], end < len(items)


def _page(data: list[dict], more: bool) -> dict:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": more}


@router.get("/v1/models")
async def list_models(raw_request: Request):
    """vLLM's list (base model + loaded adapters) plus this server's stored documents, which the
    resolver loads on first use; `?limit=N&after=ID` pages through it as `/v1/documents` does.

    Stored documents are written as copies of one model card's dict rather than one pydantic
    object each: with 10,000 stored adapters that is the difference between milliseconds and a
    good part of a second.
    """
    from vllm.entrypoints.serve.engine.protocol import ModelCard, ModelPermission

    try:
        limit, after = _page_params(raw_request)
    except ServingError as e:
        return _from_exception(e)
    handler = raw_request.app.state.openai_serving_models
    listing = await handler.show_available_models()
    data = [card.model_dump() for card in listing.data]
    svc = getattr(raw_request.app.state, STATE_KEY, None)
    if svc is not None:
        try:
            shown = {card["id"] for card in data}
            parent = handler.base_model_paths[0].name
            template = ModelCard(id="", root="", parent=parent, permission=[ModelPermission()]).model_dump()
            for rec in await asyncio.to_thread(svc.adapters):
                if rec.id not in shown:
                    data.append({**template, "id": rec.id, "root": rec.id, "created": rec.created})
        except Exception:
            log.exception("vllm-d2l: listing stored documents failed")
    if limit is None and after is None:
        return JSONResponse(content={"object": "list", "data": data})
    try:
        return JSONResponse(content=_page(*paginate(data, limit, after)))
    except ServingError as e:
        return _from_exception(e)


# ------------------------------------------------------------------------------------- middleware
def _model_of(body: bytes) -> str | None:
    """The `model` of a completion request's JSON body; None when absent or malformed (vLLM
    answers a malformed body itself)."""
    try:
        model = json.loads(body).get("model")
    except Exception:
        return None
    return model if isinstance(model, str) else None


class CompletionTrafficMiddleware:
    """Reads the `model` of completion requests (then replays the body untouched) to count
    traffic per model kind, to stop serving documents another replica deleted, and to build a
    composite (`doc-A+doc-B`) before vLLM looks the name up.

    A plain ASGI middleware, so streaming responses pass through unbuffered.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in COMPLETION_PATHS:
            return await self.app(scope, receive, send)
        app_state = scope.get("app").state if scope.get("app") is not None else None
        messages, size, more = [], 0, True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > MAX_PEEK_BYTES:
                break
        svc = getattr(app_state, STATE_KEY, None) if app_state is not None else None
        read = svc is not None and not more and bool(messages) and messages[-1]["type"] == "http.request"
        model, held = None, ()
        if read:
            model = _model_of(b"".join(m.get("body", b"") for m in messages))
            held = svc.request_opened(model)  # no eviction takes these until the answer's last byte

        async def replay():
            if messages:
                return messages.pop(0)
            return await receive()

        try:
            refusal = await self._observe(svc, model) if read else None
            if refusal is not None:
                return await _from_exception(refusal)(scope, receive, send)
            return await self.app(scope, replay, send)
        finally:
            if held:
                svc.request_closed(held)

    @staticmethod
    async def _observe(svc, model: str | None) -> Exception | None:
        """Account for the request, and build the composite it names (`doc-A+doc-B`) if need be;
        an error to answer instead of passing it on, or None."""
        try:
            if model and is_upload_id(model):
                svc.forget_if_gone(model)
                refusal = svc.refusal_for(model)
                if refusal is not None:
                    return refusal
            elif model and split_composite(model):
                svc.forget_if_gone(model)
                try:
                    await svc.ensure_composite(model)
                except Exception as e:
                    return e
            svc.note_request(model)
        except Exception:
            log.exception("vllm-d2l: request accounting failed")
        return None


# ------------------------------------------------------------------------------------- plugin
class DocumentsPlugin:
    """Factory target of the `vllm.endpoint_plugins` entry point."""

    name = PLUGIN_NAME
    required_tasks = ("generate",)

    def attach_router(self, app: FastAPI) -> None:
        app.include_router(router)
        app.add_middleware(CompletionTrafficMiddleware)

    async def init_state(self, engine_client, state, args) -> None:
        from .setup import build_service

        if engine_client is None:
            log.warning("vllm-d2l: no engine on this server; /v1/documents is disabled")
            return
        svc = await build_service(engine_client, state)
        setattr(state, STATE_KEY, svc)
