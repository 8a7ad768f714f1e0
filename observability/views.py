"""GET /metrics: Prometheus exposition, for a scraper holding METRICS_TOKEN.

Without METRICS_TOKEN the endpoint answers 404 in production (nothing to guess, nothing exposed);
the demo (DJANGO_DEBUG) serves it to loopback clients only.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from observability.metrics import render

_LOOPBACK = ("127.0.0.1", "::1")


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return settings.DEBUG and request.META.get("REMOTE_ADDR") in _LOOPBACK


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        raise Http404("not found")
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
