"""What a cleanup rule matches: pure functions over the kf-account mirror, no writes, no WeChat.

Each selector that is set votes on an account; ``combine`` says whether all of them or any one must
agree. The reasons returned are what the run history and the dry run show ("why").
"""

from __future__ import annotations

import fnmatch
import re

# The parser behind `re` (Python 3.11+), used only to refuse patterns that backtrack without bound.
import re._parser as _sre_parser  # type: ignore[import-not-found]
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cleanup.models import Combine, InviteStatus, PatternKind

MAX_PATTERN_LENGTH = 200


class InvalidPattern(ValueError):
    pass


def pattern_compile(pattern: str, kind: str) -> re.Pattern[str]:
    """A whole-name matcher for a glob or a regular expression, or InvalidPattern saying why not."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("the pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"the pattern must be at most {MAX_PATTERN_LENGTH} characters")
    if any(ord(ch) < 0x20 for ch in pattern):
        raise InvalidPattern("the pattern must not contain control characters")
    if kind == PatternKind.GLOB:
        return re.compile(fnmatch.translate(pattern))
    if kind != PatternKind.REGEX:
        raise InvalidPattern(f"pattern_kind must be one of {', '.join(PatternKind.values)}")
    try:
        parsed = _sre_parser.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise InvalidPattern(f"not a valid regular expression: {exc}") from None
    _refuse_catastrophic(parsed)
    return compiled


_REPEATS = {_sre_parser.MAX_REPEAT, _sre_parser.MIN_REPEAT, getattr(_sre_parser, "POSSESSIVE_REPEAT", None)}


def _refuse_catastrophic(parsed: Any, inside_repeat: bool = False) -> None:
    """Nested unbounded repeats ((a+)+) and back-references can take exponential time: refused.

    A merchant's pattern runs on our workers; a pattern that cannot be matched in linear-ish time is
    a way to stall them.
    """
    for op, value in parsed:
        if op == _sre_parser.GROUPREF or op == getattr(_sre_parser, "GROUPREF_EXISTS", None):
            raise InvalidPattern("back-references are not supported in cleanup patterns")
        if op in _REPEATS:
            low, high, body = value
            unbounded = high == _sre_parser.MAXREPEAT or high > 50
            if inside_repeat and unbounded:
                raise InvalidPattern("nested repetition such as (a+)+ is not supported in cleanup patterns")
            _refuse_catastrophic(body, inside_repeat or unbounded)
        elif op == _sre_parser.SUBPATTERN:
            _refuse_catastrophic(value[-1], inside_repeat)
        elif op == _sre_parser.BRANCH:
            for branch in value[1]:
                _refuse_catastrophic(branch, inside_repeat)
        elif op in (_sre_parser.ASSERT, _sre_parser.ASSERT_NOT):
            _refuse_catastrophic(value[1], inside_repeat)
        elif op == getattr(_sre_parser, "ATOMIC_GROUP", None):
            _refuse_catastrophic(value, inside_repeat)


@dataclass(frozen=True, slots=True)
class Account:
    """The fields of a mirrored kf account a rule looks at."""

    kf_account: str
    kf_wx: str
    invite_status: str
    invite_expire_time: datetime | None
    unbound_since: datetime | None


@dataclass(frozen=True)
class Criteria:
    combine: str = Combine.ALL
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    invite_statuses: frozenset[str] = frozenset()
    unbound_days: int | None = None
    # kf_account → the date it is due; only entries whose date has come count.
    listed: dict[str, date] | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    @property
    def configured(self) -> int:
        return sum(
            (
                self.pattern is not None,
                bool(self.invite_statuses),
                self.unbound_days is not None,
                self.listed is not None,
            )
        )


def effective_invite_status(account: Account, now: datetime) -> str:
    """WeChat's invite_status, with a waiting invitation past its expiry read as expired."""
    if account.kf_wx:
        return ""
    if account.invite_status == "waiting" and account.invite_expire_time and account.invite_expire_time <= now:
        return InviteStatus.EXPIRED
    return account.invite_status


def match(criteria: Criteria, account: Account, now: datetime) -> list[str] | None:
    """The reasons this rule selects the account, or None when it does not."""
    votes: list[tuple[bool, str]] = []
    if criteria.pattern is not None:
        votes.append(
            (criteria.pattern.fullmatch(account.kf_account) is not None, f"matches pattern {criteria.pattern_text!r}")
        )
    if criteria.invite_statuses:
        status = effective_invite_status(account, now)
        votes.append((status in criteria.invite_statuses, f"invitation {status}"))
    if criteria.unbound_days is not None:
        since = account.unbound_since
        unbound = not account.kf_wx and since is not None and since <= now - timedelta(days=criteria.unbound_days)
        days = (now - since).days if since is not None else 0
        votes.append((unbound, f"not bound to a WeChat id for {days} days (more than {criteria.unbound_days})"))
    if criteria.listed is not None:
        due = criteria.listed.get(account.kf_account)
        today = now.astimezone(criteria.timezone).date()
        votes.append((due is not None and due <= today, f"listed for deletion on {due}"))
    if not votes:
        return None
    if criteria.combine == Combine.ANY:
        chosen = [why for ok, why in votes if ok]
        return chosen or None
    return [why for _, why in votes] if all(ok for ok, _ in votes) else None
