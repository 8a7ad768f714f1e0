"""A request id for every request (the caller's X-Request-ID if it is sane, else a new one)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from observability import context

# Whatever a proxy puts there is echoed back and logged: keep it short and printable.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        # Set at the start of every request, not reset at its end: Django logs the response (the
        # "Not Found: …" lines) after the middleware chain returns, and those lines need the ids too.
        context.start(request=request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
