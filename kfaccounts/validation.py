"""What a kf_account may look like before we send it anywhere (docs/wechat.md §9)."""

from __future__ import annotations

import re

from errorkit import DomainError

# prefix@wechatid: prefix up to 10 of [A-Za-z0-9_]; the WeChat id part up to 30 characters of what
# WeChat ids may contain (letters, digits, '_' and '-').
KF_ACCOUNT_RE = re.compile(r"[A-Za-z0-9_]{1,10}@[A-Za-z0-9_\-]{1,30}")
MAX_BULK = 1000


class MalformedKfAccount(DomainError, ValueError):
    """Not a kf_account WeChat could know: refused before anything is stored or sent. (WeChat's 65401
    for a well-formed account that does not exist is ``wechat.errors.InvalidKfAccount``.)"""

    code = "invalid_input"


def kf_account_check(value: object) -> str:
    if not isinstance(value, str):
        raise MalformedKfAccount("kf_account must be a string")
    if not KF_ACCOUNT_RE.fullmatch(value):
        raise MalformedKfAccount(
            f"{value[:80]!r} is not a kf_account: expected prefix@wechatid, prefix up to 10 of A-Z a-z 0-9 _, "
            "WeChat id up to 30 characters"
        )
    return value
