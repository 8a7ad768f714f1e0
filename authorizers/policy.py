"""Who may have customer-service accounts deleted on their behalf: one function over one table.

Every entry point (API, admin, command line, schedules) asks ``eligibility`` before anything is sent
to WeChat, and shows its reasons when the answer is no.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from authorizers.models import CERTIFIED_VERIFY_TYPE_IDS, AccountKind, Authorizer, AuthorizerStatus
from dbkit.jsonarrays import JSONArrayHasAny
from errorkit import DomainError

# Permission sets that carry the kf-account APIs (docs/wechat.md §9, §10).
KF_PERMISSION_SETS = frozenset({1, 6, 19, 100, 101})
# Official and Service Accounts may call kfaccount/del only when certified; Mini Programs and Mini
# Games may always (the doc's applicability table).
CERTIFICATION_REQUIRED = frozenset({AccountKind.SUBSCRIPTION, AccountKind.SERVICE})
SUPPORTED_KINDS = frozenset(
    {AccountKind.SUBSCRIPTION, AccountKind.SERVICE, AccountKind.MINI_PROGRAM, AccountKind.MINI_GAME}
)
NORMAL_ACCOUNT_STATUS = 1


@dataclass(frozen=True, slots=True)
class Reason:
    """One failed rule. ``message`` is English (the API, the audit log and stored errors keep it);
    ``text`` is the same sentence in the active language, for the console."""

    code: str
    template: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def message(self) -> str:
        with translation.override("en"):
            return self.text

    @property
    def text(self) -> str:
        return gettext(self.template) % {name: str(value) for name, value in self.params}


@dataclass(frozen=True, slots=True)
class Eligibility:
    eligible: bool
    reasons: tuple[Reason, ...]

    @property
    def summary(self) -> str:
        """In English: what the API answers and what is stored."""
        with translation.override("en"):
            return self.summary_text

    @property
    def summary_text(self) -> str:
        """In the active language: what the console shows."""
        return gettext("eligible") if self.eligible else "; ".join(reason.text for reason in self.reasons)


class NotEligible(DomainError):
    """Refused by the policy: the merchant may not have kf accounts deleted (or listed) for it now.

    ``str()`` is the verdict, ``message`` what a client reads.
    """

    code = "not_eligible"
    status = 403

    def __init__(self, verdict: Eligibility, *, refused: str = "deletions are not possible") -> None:
        super().__init__(verdict.summary)
        self.message = f"{refused} for this account: {verdict.summary}"
        self.verdict = verdict


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    holds: Callable[[Authorizer], bool]
    template: str
    params: Callable[[Authorizer], dict[str, Any]] = lambda a: {}


def _granted(a: Authorizer) -> Any:
    return ", ".join(map(str, sorted(a.func_ids or []))) or gettext_lazy("none")


RULES: tuple[Rule, ...] = (
    Rule(
        "authorization_revoked",
        lambda a: a.status != AuthorizerStatus.REVOKED,
        gettext_noop("the merchant revoked the authorization"),
    ),
    Rule(
        "deactivated",
        lambda a: a.status != AuthorizerStatus.DEACTIVATED,
        gettext_noop("the service provider's staff deactivated this merchant"),
    ),
    Rule(
        "account_abnormal",
        lambda a: a.account_status in (None, NORMAL_ACCOUNT_STATUS),
        gettext_noop("the account is not in normal status (account_status %(status)s)"),
        lambda a: {"status": a.account_status},
    ),
    Rule(
        "unsupported_account_type",
        lambda a: a.kind in SUPPORTED_KINDS,
        gettext_noop("kfaccount/del does not support this account type (%(kind)s)"),
        lambda a: {"kind": a.get_kind_display()},
    ),
    Rule(
        "not_certified",
        lambda a: a.kind not in CERTIFICATION_REQUIRED or a.is_certified,
        gettext_noop("%(kind)s must be certified (verify_type_info.id is %(verify_type_id)s)"),
        lambda a: {"kind": a.get_kind_display(), "verify_type_id": a.verify_type_id},
    ),
    Rule(
        "missing_permission",
        lambda a: bool(KF_PERMISSION_SETS.intersection(a.func_ids or [])),
        gettext_noop("none of permission sets 1, 6, 19, 100, 101 is granted (granted: %(granted)s)"),
        lambda a: {"granted": _granted(a)},
    ),
)


def eligibility(authorizer: Authorizer) -> Eligibility:
    failed = tuple(
        Reason(rule.code, rule.template, tuple(rule.params(authorizer).items()))
        for rule in RULES
        if not rule.holds(authorizer)
    )
    return Eligibility(eligible=not failed, reasons=failed)


def rule_conditions() -> dict[str, Q]:
    """Each rule of RULES as a SQL condition that holds where the rule holds, by rule code, for
    judging 100,000 merchants at once (``Authorizer.objects.eligible()``, the console's filter, the
    dashboard's counts by reason). tests/authorizers/test_policy.py checks that they agree with
    RULES on every combination of the columns the rules read."""
    conditions = {
        "authorization_revoked": ~Q(status=AuthorizerStatus.REVOKED),
        "deactivated": ~Q(status=AuthorizerStatus.DEACTIVATED),
        "account_abnormal": Q(account_status__isnull=True) | Q(account_status=NORMAL_ACCOUNT_STATUS),
        "unsupported_account_type": Q(kind__in=SUPPORTED_KINDS),
        "not_certified": ~Q(kind__in=CERTIFICATION_REQUIRED) | Q(verify_type_id__in=CERTIFIED_VERIFY_TYPE_IDS),
        "missing_permission": Q(JSONArrayHasAny("func_ids", KF_PERMISSION_SETS)),
    }
    assert list(conditions) == [rule.code for rule in RULES], "one condition per rule, in the table's order"
    return conditions


def eligible_q() -> Q:
    """All the rules as one SQL condition (see rule_conditions)."""
    eligible = Q()
    for condition in rule_conditions().values():
        eligible &= condition
    return eligible


def account_kind(*, service_type_id: int | None, is_mini_program: bool) -> AccountKind:
    if is_mini_program:
        # Mini Program service types: 4 is a Mini Game, the rest are Mini Programs of some sort.
        return AccountKind.MINI_GAME if service_type_id == 4 else AccountKind.MINI_PROGRAM
    if service_type_id in (0, 1):
        return AccountKind.SUBSCRIPTION
    if service_type_id == 2:
        return AccountKind.SERVICE
    return AccountKind.UNKNOWN
