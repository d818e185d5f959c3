"""Refusals by the framework itself (no such path, wrong method, a body it cannot read, a bad
query value) in the project's shape, `errors` with field, code and both messages; and OpenAPI
schemas that say so (a Problem, not FastAPI's HTTPValidationError)."""

import re
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import FieldError
from shared.problems import from_pydantic
from shared.refusals import Refused, on_refused, problem

_HTTP_ERRORS: dict[int, tuple[str, str, str, str]] = {
    400: ("body", "invalid_json", "不是有效的 JSON", "not valid JSON"),
    404: ("path", "not_found", "没有这个地址", "no such path"),
    405: ("method", "method_not_allowed", "此地址不接受该方法",
          "this path does not take that method"),
    413: ("body", "too_large", "请求体太大", "the request body is too large"),
    415: ("content-type", "unsupported_media_type", "不支持的内容类型",
          "unsupported content type"),
}
PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for a body it cannot read

PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "required": ["detail", "errors"],
    "description": "Why a request was refused: every field at fault, with a stable code and "
                   "the reason in Chinese and English.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "code", "message_zh", "message_en"],
            "properties": {k: {"type": "string"}
                           for k in ("field", "code", "message_zh", "message_en")}}},
        "rejection_id": {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]},
    },
}


def http_error(status: int, detail: object) -> tuple[int, FieldError]:
    """A framework refusal (no route, wrong method, unreadable body) as (status, FieldError).
    An unreadable body is a 422 like any malformed submission."""
    if status == 400 and detail == PARSE_ERROR:
        status = 422
        field, code, zh, en = _HTTP_ERRORS[400]
    else:
        field, code, zh, en = _HTTP_ERRORS.get(status, (
            "request", "refused", "请求被拒绝", str(detail) if detail else "refused"))
    return status, FieldError(field, code, zh, en)


def problem_body(errors: list[FieldError], status: int = 422) -> dict:
    return problem(status, errors)


async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 (a bad path, query or header value) in the project's shape."""
    assert isinstance(exc, RequestValidationError)
    errors = from_pydantic(exc.errors(), skip=("body", "path", "query", "header"))
    return JSONResponse(problem_body(errors), status_code=422)


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status, error = http_error(exc.status_code, exc.detail)
    return JSONResponse(problem_body([error], status), status_code=status,
                        headers=getattr(exc, "headers", None))


class UnknownQuery:
    """Refuses a query parameter the operation does not take (422, naming it):
    `?dya=2026-03-01` must not quietly answer for today. What each operation takes is read from
    the app's own OpenAPI schema."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app, self.api = app, api
        self._operations: list[tuple[re.Pattern, str, frozenset[str]]] | None = None

    def _known(self, method: str, path: str) -> frozenset[str] | None:
        if self._operations is None:
            self._operations = [
                (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"),
                 verb.upper(), frozenset(p["name"] for p in op.get("parameters", [])
                                         if p.get("in") == "query"))
                for template, item in self.api.openapi().get("paths", {}).items()
                for verb, op in item.items() if isinstance(op, dict)]
        for pattern, verb, names in self._operations:
            if verb == method and pattern.match(path):
                return names
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            known = self._known(scope["method"], scope["path"])
            if known is not None:
                names = {k for k, _ in parse_qsl(scope["query_string"].decode("latin-1"),
                                                 keep_blank_values=True)}
                unknown = sorted(names - known)
                if unknown:
                    takes = ", ".join(sorted(known)) or "none"
                    errors = [FieldError(n[:100] or "query", "unknown_parameter",
                                         "不认识的查询参数", "this path takes no such query "
                                         f"parameter (it takes: {takes})")
                              for n in unknown[:20]]
                    response = JSONResponse(problem_body(errors), status_code=422)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def install_problems(app: FastAPI) -> None:
    """Framework refusals answer in the project's shape, and the OpenAPI schema says so: its
    422 (and every other refusal) is a Problem, not FastAPI's HTTPValidationError. A query
    parameter the route does not take is refused too, and every `Refused` that a use case or a
    dependency raises answers through the one handler."""
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(Refused, on_refused)
    app.add_middleware(UnknownQuery, api=app)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["HTTPValidationError"] = PROBLEM_SCHEMA
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
