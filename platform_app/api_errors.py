"""Every API error reads as {"error": {"code": "...", "message": "..."}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """A 4xx with a machine-readable code chosen by the caller."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.retry_after = retry_after


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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is down or restarting: a 503 the client may retry, not a 500 (nothing was
        # committed, or the request's Idempotency-Key replays what was).
        exc = Unavailable()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        code = exc.error_code
    else:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    body: dict[str, Any] = {"code": code, "message": _message(getattr(exc, "detail", str(exc)))}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["fields"] = exc.detail
    response.data = {"error": body}
    if isinstance(exc, ApiError) and exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unavailable):
        response["Retry-After"] = "2"
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: API clients get the error envelope, people get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "message": "no such resource"}}, status=404)
    return defaults.page_not_found(request, exception)


# Every operation may answer these, whatever its own documented success: the error envelope.
_DOCUMENTED_ERRORS = {
    "400": "Invalid input (`invalid_input`, `malformed_request`)",
    "401": "No API key, or an invalid or revoked one",
    "403": "The merchant may not do this (`not_eligible`)",
    "404": "No such resource (another merchant's objects answer this too)",
    "405": "Method not allowed",
    "406": "Not acceptable",
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
