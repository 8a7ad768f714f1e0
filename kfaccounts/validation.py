"""What a kf_account may look like before we send it anywhere (docs/wechat.md §9)."""

from __future__ import annotations

import re

from errorkit import DomainError

# prefix@wechatid: prefix up to 10 of [A-Za-z0-9_]; the WeChat id part up to 30 characters of what
# WeChat ids may contain (letters, digits, '_' and '-').
KF_ACCOUNT_RE = re.compile(r"[A-Za-z0-9_]{1,10}@[A-Za-z0-9_\-]{1,30}")
MAX_BULK = 1000


class InvalidKfAccount(DomainError, ValueError):
    """Not a kf_account WeChat could know: refused before anything is stored or sent."""

    code = "invalid_input"


def kf_account_check(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidKfAccount("kf_account must be a string")
    if not KF_ACCOUNT_RE.fullmatch(value):
        raise InvalidKfAccount(
            f"{value[:80]!r} is not a kf_account: expected prefix@wechatid, prefix up to 10 of A-Z a-z 0-9 _, "
            "WeChat id up to 30 characters"
        )
    return value
