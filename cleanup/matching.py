"""What a cleanup rule matches: pure functions over the kf-account mirror, no writes, no WeChat.

Each selector that is set votes on an account; ``combine`` says whether all of them or any one must
agree. The reasons returned are what the run history and the dry run show ("why").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from cleanup.models import Combine, InviteStatus, PatternKind

MAX_PATTERN_LENGTH = 200
# RE2 compiles a pattern to a program and matches in time linear in the text times the program's
# size, whatever the pattern: no backtracking, so no pattern can freeze a worker. The program's size
# is bounded (a 200-character pattern may still expand: (?:.{0,9}x){18} is ~1,500), and so is the
# memory RE2 may use for it.
MAX_PROGRAM_SIZE = 2000
RE2_MAX_MEM = 8 << 20
# What RE2 refuses and Python's re accepts, named so the merchant reads why (RE2's own message says
# "invalid perl operator" or "invalid escape sequence").
_BACKTRACKING_ONLY = re.compile(r"\\[1-9]|\\g<|\(\?P=|\(\?<?[=!]|\(\?>|[*+?}][+]")


class InvalidPattern(ValueError):
    pass


class Matcher(Protocol):
    """A compiled whole-name pattern (an RE2 program)."""

    programsize: int

    def fullmatch(self, text: str) -> Any: ...


def _options() -> Any:
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.log_errors = False  # a refused pattern is the merchant's error, not a log line
    return options


def glob_to_regex(pattern: str) -> str:
    """*, ? and [abc] / [!abc] as an RE2 expression (fnmatch.translate emits look-aheads and
    back-references, which RE2 has no need for and refuses)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            body = pattern[i:j].replace("\\", "\\\\")
            i = j + 1
            if body.startswith("!"):
                body = "^" + body[1:]
            elif body.startswith("^"):
                body = "\\" + body
            out.append(f"[{body}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def pattern_compile(pattern: str, kind: str) -> Matcher:
    """A whole-name matcher for a glob or a regular expression, or InvalidPattern saying why not."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("the pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"the pattern must be at most {MAX_PATTERN_LENGTH} characters")
    if any(ord(ch) < 0x20 for ch in pattern):
        raise InvalidPattern("the pattern must not contain control characters")
    if kind == PatternKind.GLOB:
        expression = glob_to_regex(pattern)
    elif kind == PatternKind.REGEX:
        if _BACKTRACKING_ONLY.search(pattern):
            raise InvalidPattern(
                "back-references, look-arounds, atomic groups and possessive repeats are not supported in "
                "cleanup patterns (they run on a linear-time engine, RE2)"
            )
        expression = pattern
    else:
        raise InvalidPattern(f"pattern_kind must be one of {', '.join(PatternKind.values)}")
    try:
        compiled = re2.compile(expression, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidPattern(f"not a valid regular expression (RE2 syntax): {reason}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise InvalidPattern(
            f"the pattern is too complex: its program has {compiled.programsize} steps, at most "
            f"{MAX_PROGRAM_SIZE} (fewer or smaller repeats)"
        )
    return compiled


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
    pattern: Matcher | None = None
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
