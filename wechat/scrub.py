"""The one scrubber: keeps tokens, tickets and codes out of error messages and log lines.

Two ways a secret reaches text: in a URL's query string (WeChat's API takes its tokens there, the
authorization callback gets the merchant's code there), or verbatim (a secret we sent, echoed back
in an error). ``strip_query`` drops whole query strings (requests' and urllib3's messages, request
lines); ``mask_secrets`` keeps the text readable but masks the value of every parameter that names a
secret, and every known secret it is given. ``scrub`` does both. Pure text: no Django, so the
WeChat client and the log formatters and filters share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
# Any query string in a URL, a request line or a requests/urllib3 message, however it is encoded: up
# to the next space or double quote (a quote or parenthesis inside a query is dropped with it).
QUERY = re.compile(r"\?[^\s\"]*")
# Parameters whose value is a secret. Matched as a suffix, so authorizer_access_token,
# component_verify_ticket and pre_auth_code are covered by access_token, ticket and auth_code.
SECRET_PARAMETERS = ("access_token", "component_access_token", "refresh_token", "ticket", "auth_code")
_SECRET_PARAMETER = re.compile(rf"((?:{'|'.join(SECRET_PARAMETERS)})=)[^&\s\"']+")
# Real tokens and secrets are long (appsecret: 32 hex, tokens: 100+ characters); replacing a short
# value would only mangle the text.
MIN_SECRET_LENGTH = 8


def strip_query(text: str) -> str:
    """Every query string removed (``/cgi-bin/x?access_token=…`` → ``/cgi-bin/x``)."""
    return QUERY.sub("", text)


def mask_secrets(text: str, known: Iterable[str] = ()) -> str:
    """Secret parameters' values and each ``known`` secret (also URL-encoded) replaced by ``***``."""
    text = _SECRET_PARAMETER.sub(rf"\1{MASK}", text)
    for secret in known:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    return text


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """Both: no query string, no known secret."""
    return mask_secrets(strip_query(text), known)
