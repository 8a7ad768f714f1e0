"""Logging filters wired in settings.LOGGING."""

from __future__ import annotations

import logging
import re

from wechat.scrub import strip_query

# The authorization callback carries its one-time signed state in the path (docs/wechat.md §4), on
# the default platform's path and on each platform's (/wechat/platforms/<component_appid>/authorize/…).
_CALLBACK_STATE = re.compile(r"(/wechat/(?:platforms/[^/\s\"?]+/)?authorize/callback/)[^/\s\"?]+")


def scrub_request_line(text: str) -> str:
    """A request line or path without its query string and without the callback's state."""
    return _CALLBACK_STATE.sub(r"\1-", strip_query(text))


class DropQueryStrings(logging.Filter):
    """Strip query strings from request lines (runserver's django.server log, the demo's access log).

    The authorization callback's query holds the merchant's authorization code, its path the state.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub_request_line(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub_request_line(record.msg)
        return True
