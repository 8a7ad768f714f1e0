"""The eligibility policy, read directly: every rule, every account kind, every verify_type_info id."""

from __future__ import annotations

import pytest

from authorizers.models import AccountKind, Authorizer, AuthorizerStatus
from authorizers.policy import KF_PERMISSION_SETS, RULES, account_kind, eligibility

ELIGIBLE = {
    "appid": "wx0123456789abcdef",
    "kind": AccountKind.SUBSCRIPTION,
    "verify_type_id": 0,
    "account_status": 1,
    "func_ids": [1],
    "status": AuthorizerStatus.ACTIVE,
}


def merchant(**fields: object) -> Authorizer:
    """An unsaved row: the policy reads fields only, never the database."""
    return Authorizer(**{**ELIGIBLE, **fields})


def codes(authorizer: Authorizer) -> list[str]:
    return [reason.code for reason in eligibility(authorizer).reasons]


def test_the_table_has_exactly_these_rules_in_this_order():
    assert [rule.code for rule in RULES] == [
        "authorization_revoked",
        "deactivated",
        "account_abnormal",
        "unsupported_account_type",
        "not_certified",
        "missing_permission",
    ]


def test_a_certified_active_account_with_a_kf_permission_set_is_eligible():
    verdict = eligibility(merchant())
    assert (verdict.eligible, verdict.reasons, verdict.summary) == (True, (), "eligible")


# verify_type_info.id: -1 uncertified; 0 WeChat-certified; 1 and 2 Weibo-only (not WeChat
# certification); 3, 4, 5 WeChat-certified by qualification. Mini Programs and Mini Games need none.
CERTIFIED = {-1: False, 0: True, 1: False, 2: False, 3: True, 4: True, 5: True, None: False}
KINDS_NEEDING_CERTIFICATION = {
    AccountKind.SUBSCRIPTION: True,
    AccountKind.SERVICE: True,
    AccountKind.MINI_PROGRAM: False,
    AccountKind.MINI_GAME: False,
}


@pytest.mark.parametrize("kind", list(KINDS_NEEDING_CERTIFICATION))
@pytest.mark.parametrize("verify_type_id", list(CERTIFIED), ids=lambda v: f"verify_type_{v}")
def test_certification_is_required_of_official_and_service_accounts_only(kind, verify_type_id):
    needs = KINDS_NEEDING_CERTIFICATION[kind]
    expected = [] if (CERTIFIED[verify_type_id] or not needs) else ["not_certified"]
    assert codes(merchant(kind=kind, verify_type_id=verify_type_id)) == expected


@pytest.mark.parametrize("verify_type_id", list(CERTIFIED), ids=lambda v: f"verify_type_{v}")
def test_an_unknown_account_kind_is_never_eligible_whatever_its_certification(verify_type_id):
    assert codes(merchant(kind=AccountKind.UNKNOWN, verify_type_id=verify_type_id)) == ["unsupported_account_type"]


def test_every_account_kind_is_covered():
    assert set(AccountKind) == set(KINDS_NEEDING_CERTIFICATION) | {AccountKind.UNKNOWN}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (AuthorizerStatus.ACTIVE, []),
        (AuthorizerStatus.REVOKED, ["authorization_revoked"]),
        (AuthorizerStatus.DEACTIVATED, ["deactivated"]),
    ],
)
def test_only_an_active_merchant_is_eligible(status, expected):
    assert set(AuthorizerStatus) == {AuthorizerStatus.ACTIVE, AuthorizerStatus.REVOKED, AuthorizerStatus.DEACTIVATED}
    assert codes(merchant(status=status)) == expected


@pytest.mark.parametrize(("account_status", "ok"), [(None, True), (1, True), (0, False), (14, False), (16, False)])
def test_an_account_not_in_normal_status_is_refused(account_status, ok):
    assert codes(merchant(account_status=account_status)) == ([] if ok else ["account_abnormal"])


@pytest.mark.parametrize("granted", sorted(KF_PERMISSION_SETS))
def test_any_one_kf_permission_set_is_enough(granted):
    assert {1, 6, 19, 100, 101} == KF_PERMISSION_SETS
    assert codes(merchant(func_ids=[granted])) == []


@pytest.mark.parametrize("func_ids", [[], None, [2, 3, 7], [0, 18, 20, 99, 102]], ids=str)
def test_without_a_kf_permission_set_the_merchant_is_refused(func_ids):
    assert codes(merchant(func_ids=func_ids)) == ["missing_permission"]


def test_every_failing_rule_is_reported_in_table_order_with_a_message_that_says_why():
    verdict = eligibility(
        merchant(
            status=AuthorizerStatus.REVOKED,
            account_status=14,
            kind=AccountKind.SERVICE,
            verify_type_id=-1,
            func_ids=[2, 3],
        )
    )
    assert not verdict.eligible
    assert [(r.code, r.message) for r in verdict.reasons] == [
        ("authorization_revoked", "the merchant revoked the authorization"),
        ("account_abnormal", "the account is not in normal status (account_status 14)"),
        ("not_certified", "Service Account must be certified (verify_type_info.id is -1)"),
        ("missing_permission", "none of permission sets 1, 6, 19, 100, 101 is granted (granted: 2, 3)"),
    ]
    assert verdict.summary == "; ".join(r.message for r in verdict.reasons)


@pytest.mark.parametrize(
    ("service_type_id", "is_mini_program", "kind"),
    [
        (0, False, AccountKind.SUBSCRIPTION),
        (1, False, AccountKind.SUBSCRIPTION),
        (2, False, AccountKind.SERVICE),
        (3, False, AccountKind.UNKNOWN),
        (None, False, AccountKind.UNKNOWN),
        (0, True, AccountKind.MINI_PROGRAM),
        (2, True, AccountKind.MINI_PROGRAM),
        (12, True, AccountKind.MINI_PROGRAM),
        (None, True, AccountKind.MINI_PROGRAM),
        (4, True, AccountKind.MINI_GAME),
    ],
)
def test_account_kind_follows_service_type_info_and_the_mini_program_marker(service_type_id, is_mini_program, kind):
    assert account_kind(service_type_id=service_type_id, is_mini_program=is_mini_program) == kind


@pytest.mark.django_db
def test_the_sql_condition_agrees_with_the_rules_on_every_combination():
    """Authorizer.objects.eligible() / not_eligible() (SQL, the console's filter over 100,000
    merchants) and RULES (Python) judge alike, both ways, on every combination of the columns the
    rules read. Runs on PostgreSQL and SQLite alike (dbkit.jsonarrays)."""
    import itertools

    combos = itertools.product(
        list(AuthorizerStatus),
        [None, 1, 2],
        list(AccountKind),
        [None, -1, 0, 1, 3],
        [[], [2, 3], [1], [6, 15], [101], [19, 2], [100]],
    )
    for n, (status, account_status, kind, verify_type_id, func_ids) in enumerate(combos):
        Authorizer.objects.create(
            appid=f"wx{n:016x}",
            status=status,
            account_status=account_status,
            kind=kind,
            verify_type_id=verify_type_id,
            func_ids=func_ids,
        )
    expected = {a.pk for a in Authorizer.objects.all() if eligibility(a).eligible}
    assert 0 < len(expected) < Authorizer.objects.count()
    assert set(Authorizer.objects.eligible().values_list("pk", flat=True)) == expected
    assert set(Authorizer.objects.not_eligible().values_list("pk", flat=True)) == (
        set(Authorizer.objects.values_list("pk", flat=True)) - expected
    )
