"""The merchant API answers in English whatever the client's Accept-Language.

LocaleMiddleware serves the staff console in the browser's language; the texts the API returns
(eligibility reasons, DRF's validation messages, the schema's labels) are part of its contract and
stay English. Placed right after LocaleMiddleware.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

API_PREFIX = "/api/"
API_LANGUAGE = "en"


class ApiInEnglish:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        translation.activate(API_LANGUAGE)
        request.LANGUAGE_CODE = API_LANGUAGE
        return self.get_response(request)
