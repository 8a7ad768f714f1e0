"""Every API error reads as {"error": {"code": "...", "message": "..."}}.

The one place where errors become HTTP answers: a ``DomainError`` raised by any service or view
(its code, message, status, fields and retry-after), DRF's own exceptions, and what the stack raises
on input no check anticipated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from errorkit import DomainError

log = logging.getLogger(__name__)


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the database is unavailable; try again shortly (the same Idempotency-Key is safe)"
    default_code = "unavailable"


_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid_input",
    Unavailable: "unavailable",
}


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _message(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


# What bad input makes the stack raise when no check of ours caught it first: a value the database
# refuses (a NUL byte, a number where a string goes), JSON or XML nested too deep, a number too large.
# They answer 400 with the envelope (and are logged with their traceback, so a missing check shows).
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    DjangoValidationError,
    RecursionError,
    OverflowError,
    UnicodeError,
    ValueError,
)


def bad_input(exc: Exception) -> bool:
    return isinstance(exc, BAD_INPUT_ERRORS)


def _bad_input_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.warning("bad input reached %s %s: %s", request.method, request.path, type(exc).__name__, exc_info=exc)
    if request.path.startswith("/api/"):
        return JsonResponse(envelope("malformed_request", "the request could not be read"), status=400)
    return HttpResponse("malformed request", status=400, content_type="text/plain; charset=utf-8")


class BadInputGuard:
    """Middleware: the same rule for views outside DRF (the WeChat URLs, the admin)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if bad_input(exception):
            return _bad_input_response(request, exception)
        return None


def envelope(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of every error answer under /api/."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def domain_error_response(exc: DomainError) -> Response:
    """A service's refusal as the envelope; ``fields`` read like a serializer's (a list per field)."""
    fields = {name: [text] for name, text in exc.fields.items()}
    message = _message(fields) if fields else exc.message
    response = Response(envelope(exc.code, message, fields), status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _too_large_message() -> str:
    return f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"


class ApiBodyLimit:
    """Middleware: a body over DATA_UPLOAD_MAX_MEMORY_SIZE under /api/ answers 413 with the envelope.

    Django refuses such a body only when something reads it, with a 400 HTML page (in debug, the
    technical page with the settings); this answers before anything reads it, from the declared
    Content-Length (a body without one is read through Django's limit, see exception_handler).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith("/api/"):
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse(envelope("malformed_request", "the Content-Length is not a number"), status=400)
            if declared > limit:
                return JsonResponse(envelope("body_too_large", _too_large_message()), status=413)
        return self.get_response(request)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return Response(envelope("body_too_large", _too_large_message()), status=413)
    if isinstance(exc, DomainError):
        set_rollback()  # as DRF does for its own errors: nothing the view wrote survives a refusal
        return domain_error_response(exc)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is down or restarting: a 503 the client may retry, not a 500 (nothing was
        # committed, or the request's Idempotency-Key replays what was).
        exc = Unavailable()
    if bad_input(exc) and not isinstance(exc, exceptions.APIException):
        log.warning("bad input reached the API: %s", type(exc).__name__, exc_info=exc)
        exc = exceptions.ParseError("the request could not be read")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    detail = getattr(exc, "detail", str(exc))
    fields = detail if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict) else None
    response.data = envelope(code, _message(detail), fields)
    if isinstance(exc, Unavailable):
        response["Retry-After"] = "2"
    return response


@csrf_exempt  # an API client's POST to a wrong URL gets the envelope, not a CSRF page
def api_not_found(request: HttpRequest) -> HttpResponse:
    """Every URL under /api/ that no route matches, whatever DEBUG says."""
    return JsonResponse(envelope("not_found", "no such resource"), status=404)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: API clients get the error envelope, people get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(envelope("not_found", "no such resource"), status=404)
    return defaults.page_not_found(request, exception)


# Every operation may answer these, whatever its own documented success: the error envelope.
_DOCUMENTED_ERRORS = {
    "400": "Invalid input (`invalid_input`, `malformed_request`)",
    "401": "No API key, or an invalid or revoked one",
    "403": "The merchant may not do this (`not_eligible`)",
    "404": "No such resource (another merchant's objects answer this too)",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "413": "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (`body_too_large`)",
    "415": "Unsupported media type",
    "422": "Idempotency-Key reused with another body",
    "429": "Rate limit (API_RATE_LIMIT) exceeded",
    "503": "The database is unavailable; retry",
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error envelope and the statuses that carry it."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status_code, description in _DOCUMENTED_ERRORS.items():
                operation["responses"].setdefault(status_code, {"description": description, "content": reference})
    return result
