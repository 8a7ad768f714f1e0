"""The dashboard: the admin index with the platform's state above the list of models."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from console.dashboard import dashboard_context


def dashboard(request: HttpRequest) -> HttpResponse:
    return admin.site.index(request, extra_context={"dashboard": dashboard_context()})
