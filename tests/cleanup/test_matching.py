"""Each selector on its own and combined: pure functions over the mirror, no database, no WeChat."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cleanup.matching import Account, Criteria, InvalidPattern, match, pattern_compile

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("UTC"))  # 16:00 in Beijing


def account(name: str = "temp1@shop", **fields) -> Account:
    values: dict[str, Any] = {"kf_wx": "", "invite_status": "", "invite_expire_time": None, "unbound_since": None}
    values.update(fields)
    return Account(kf_account=name, **values)


@pytest.mark.parametrize(
    ("pattern", "kind", "name", "selected"),
    [
        ("temp*", "glob", "temp1@shop", True),
        ("temp*", "glob", "xtemp1@shop", False),  # the whole name, not a substring
        ("temp?@shop", "glob", "temp1@shop", True),
        ("temp?@shop", "glob", "temp12@shop", False),
        ("[ab]*", "glob", "bob@shop", True),
        (r"temp\d+@shop", "regex", "temp42@shop", True),
        (r"temp\d+", "regex", "temp42@shop", False),  # fullmatch: the domain part must be covered too
        (r"(sale|promo)_\w+@.*", "regex", "promo_11@shop", True),
    ],
)
def test_pattern_selects_on_the_whole_kf_account(pattern, kind, name, selected):
    criteria = Criteria(pattern=pattern_compile(pattern, kind), pattern_text=pattern)
    reasons = match(criteria, account(name), NOW)
    assert (reasons is not None) is selected
    if selected:
        assert reasons == [f"matches pattern {pattern!r}"]


@pytest.mark.parametrize(
    ("pattern", "kind", "message"),
    [
        ("(", "regex", "not a valid regular expression"),
        (r"(a)\1", "regex", "back-references"),
        (r"(?P<x>a)(?P=x)", "regex", "back-references"),
        (r"(?=temp)\w+@shop", "regex", "look-arounds"),
        (r"(?<!x)temp.*", "regex", "look-arounds"),
        (r"(?>a+)b", "regex", "atomic groups"),
        (r"a++b", "regex", "possessive"),
        (r"(?:.{0,9}x){40}", "regex", "too complex"),
        ("", "glob", "non-empty"),
        ("x" * 201, "glob", "at most 200"),
        ("a\nb", "glob", "control characters"),
        ("a*", "sql", "pattern_kind"),
    ],
)
def test_unsafe_or_malformed_patterns_are_refused_with_a_reason(pattern, kind, message):
    with pytest.raises(InvalidPattern, match=message):
        pattern_compile(pattern, kind)


def test_bounded_repetition_inside_a_group_is_fine():
    assert pattern_compile(r"(ab){1,3}\d+@shop", "regex").fullmatch("abab12@shop")


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?:.*){40}!",  # Python's re: {10} took 3.8 s on a 26-character account, {40} never ended
        r"(?:a|aa|@)*!",  # overlapping alternatives
        r"(a+)+$",
        r"(\w*)*@x",
        r"(a|aa)+(b+)*",
    ],
)
def test_patterns_that_backtrack_without_bound_in_re_are_matched_in_linear_time(pattern):
    """RE2 has no backtracking: what froze a worker is now an ordinary pattern, matched at once."""
    matcher = pattern_compile(pattern, "regex")
    long_accounts = ["a" * 63, "a@" * 31 + "a", "aaaaaaaaaaaaaaaaaaaaaaaaa@shop", "x" * 64]
    started = time.perf_counter()
    for _ in range(100):
        for name in long_accounts:
            matcher.fullmatch(name)
    # 400 matches; Python's re needed seconds for ONE of these. A generous bound for a busy machine.
    assert time.perf_counter() - started < 2.0
    assert matcher.fullmatch("a" * 63) is None or pattern in (r"(a+)+$", r"(a|aa)+(b+)*")


def test_globs_are_matched_by_the_same_engine():
    assert pattern_compile("*x*y*z*", "glob").fullmatch("a" * 40 + "xyz") is not None
    assert pattern_compile("[!ab]*", "glob").fullmatch("cab") is not None
    assert pattern_compile("[!ab]*", "glob").fullmatch("abc") is None
    assert pattern_compile("a.b(c)", "glob").fullmatch("a.b(c)") is not None
    assert pattern_compile("a.b(c)", "glob").fullmatch("axb(c)") is None


@pytest.mark.parametrize(
    ("fields", "statuses", "selected", "why"),
    [
        ({"invite_status": "expired"}, {"expired"}, True, "invitation expired"),
        ({"invite_status": "rejected"}, {"expired", "rejected"}, True, "invitation rejected"),
        ({"invite_status": "rejected"}, {"expired"}, False, None),
        ({"invite_status": "waiting", "invite_expire_time": NOW + timedelta(days=1)}, {"expired"}, False, None),
        # WeChat may still say waiting after the invitation's expiry: that is expired.
        (
            {"invite_status": "waiting", "invite_expire_time": NOW - timedelta(minutes=1)},
            {"expired"},
            True,
            "invitation expired",
        ),
        ({"kf_wx": "alice_wx", "invite_status": "expired"}, {"expired"}, False, None),  # bound since
    ],
)
def test_invitation_status_selector(fields, statuses, selected, why):
    reasons = match(Criteria(invite_statuses=frozenset(statuses)), account(**fields), NOW)
    assert reasons == ([why] if selected else None)


@pytest.mark.parametrize(
    ("fields", "selected"),
    [
        ({"unbound_since": NOW - timedelta(days=31)}, True),
        ({"unbound_since": NOW - timedelta(days=29)}, False),
        ({"unbound_since": None}, False),  # never seen unbound
        ({"unbound_since": NOW - timedelta(days=90), "kf_wx": "bound_now"}, False),
    ],
)
def test_not_bound_for_more_than_n_days_selector(fields, selected):
    reasons = match(Criteria(unbound_days=30), account(**fields), NOW)
    assert (reasons is not None) is selected
    if selected:
        assert reasons == ["not bound to a WeChat id for 31 days (more than 30)"]


def test_listed_selector_takes_accounts_whose_date_has_come_in_the_rules_time_zone():
    listed = {"a@shop": date(2026, 12, 1), "b@shop": date(2026, 11, 3), "c@shop": date(2026, 12, 2)}
    criteria = Criteria(listed=listed, timezone=ZoneInfo("Asia/Shanghai"))
    assert match(criteria, account("a@shop"), NOW) == ["listed for deletion on 2026-12-01"]
    assert match(criteria, account("b@shop"), NOW) == ["listed for deletion on 2026-11-03"]
    assert match(criteria, account("c@shop"), NOW) is None  # tomorrow in Beijing
    assert match(criteria, account("d@shop"), NOW) is None  # not listed
    # 2026-12-01 17:00 UTC is already 2026-12-02 01:00 in Beijing.
    assert match(criteria, account("c@shop"), NOW + timedelta(hours=9)) == ["listed for deletion on 2026-12-02"]


def test_combined_with_all_every_selector_must_agree_and_every_reason_is_given():
    criteria = Criteria(
        pattern=pattern_compile("temp*", "glob"),
        pattern_text="temp*",
        invite_statuses=frozenset({"expired"}),
        unbound_days=7,
    )
    both = account("temp1@shop", invite_status="expired", unbound_since=NOW - timedelta(days=8))
    assert match(criteria, both, NOW) == [
        "matches pattern 'temp*'",
        "invitation expired",
        "not bound to a WeChat id for 8 days (more than 7)",
    ]
    assert match(criteria, account("temp1@shop", invite_status="expired"), NOW) is None
    assert (
        match(criteria, account("staff@shop", invite_status="expired", unbound_since=NOW - timedelta(days=8)), NOW)
        is None
    )


def test_combined_with_any_one_selector_is_enough_and_only_its_reason_is_given():
    criteria = Criteria(
        combine="any",
        pattern=pattern_compile("temp*", "glob"),
        pattern_text="temp*",
        invite_statuses=frozenset({"rejected"}),
        listed={"old@shop": date(2026, 1, 1)},
    )
    assert match(criteria, account("temp1@shop"), NOW) == ["matches pattern 'temp*'"]
    assert match(criteria, account("x@shop", invite_status="rejected"), NOW) == ["invitation rejected"]
    assert match(criteria, account("old@shop"), NOW) == ["listed for deletion on 2026-01-01"]
    assert match(criteria, account("staff@shop"), NOW) is None
    assert Criteria().configured == 0 and criteria.configured == 3
    assert match(Criteria(), account(), NOW) is None  # a rule without selectors selects nothing
