"""Per-merchant outbound rate limits: which limit applies, how slots are booked, how staff set them."""

from __future__ import annotations

import secrets
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from authorizers import ratelimit
from authorizers.models import Authorizer

pytestmark = pytest.mark.django_db


def test_a_merchants_own_limit_wins_over_the_global_one_and_a_lower_learned_pace_over_both(make_authorizer, settings):
    settings.WECHAT_RATE_LIMIT_PER_SECOND = 0
    merchant = make_authorizer()
    assert ratelimit.rate_limit_for(merchant) is None
    settings.WECHAT_RATE_LIMIT_PER_SECOND = 50
    assert ratelimit.rate_limit_for(merchant) == 50
    merchant.rate_limit_per_second = 20
    assert ratelimit.rate_limit_for(merchant) == 20
    merchant.learned_rate_limit = 5
    assert ratelimit.rate_limit_for(merchant) == 5
    merchant.learned_rate_limit = 80  # learned above the configured limit: the limit still holds
    assert ratelimit.rate_limit_for(merchant) == 20


def test_booked_slots_follow_each_other_at_the_merchants_pace_whoever_books_them(make_authorizer):
    merchant = make_authorizer(appid="wx" + secrets.token_hex(8), rate_limit_per_second=10)
    first = ratelimit.reserve(authorizer=merchant, api="del", count=3)
    second = ratelimit.reserve(authorizer=merchant, api="del", count=2)
    assert first is not None and second is not None
    assert first.interval == second.interval == pytest.approx(0.1)
    assert first.delay == pytest.approx(0, abs=0.05)
    # The second booking starts where the first one's three slots end.
    assert second.delay == pytest.approx(0.3, abs=0.05)
    # Another API of the same merchant has a schedule of its own.
    other = ratelimit.reserve(authorizer=merchant, api="getkflist", count=1)
    assert other is not None and other.delay == pytest.approx(0, abs=0.05)


def test_a_merchant_without_a_limit_books_nothing(make_authorizer, settings):
    settings.WECHAT_RATE_LIMIT_PER_SECOND = 0
    assert ratelimit.reserve(authorizer=make_authorizer(), api="del", count=5) is None


def _command(*args: str) -> str:
    out = StringIO()
    call_command("set_rate_limit", *args, stdout=out)
    return out.getvalue()


def test_set_rate_limit_sets_and_clears_a_merchants_limit_and_audits_it(make_authorizer, settings):
    settings.WECHAT_RATE_LIMIT_PER_SECOND = 0
    merchant = make_authorizer()
    Authorizer.objects.filter(pk=merchant.pk).update(learned_rate_limit=3)
    assert "3 calls/s" in _command(merchant.appid, "12.5")  # the learned pace is lower and still applies
    merchant.refresh_from_db()
    assert (merchant.rate_limit_per_second, merchant.learned_rate_limit) == (12.5, 3)
    assert "no limit" in _command(merchant.appid, "default", "--forget-learned")
    merchant.refresh_from_db()
    assert (merchant.rate_limit_per_second, merchant.learned_rate_limit) == (None, None)
    assert list(
        AuditEvent.objects.filter(action="authorizer.rate_limit_set", authorizer_appid=merchant.appid)
        .order_by("id")
        .values_list("outcome", flat=True)
    ) == ["set", "cleared"]


@pytest.mark.parametrize("value", ["0", "-3", "fast", "nan", "inf"])
def test_set_rate_limit_refuses_what_is_not_a_positive_rate_and_changes_nothing(make_authorizer, value):
    merchant = make_authorizer(rate_limit_per_second=7)
    with pytest.raises(CommandError):
        _command(merchant.appid, value)
    merchant.refresh_from_db()
    assert merchant.rate_limit_per_second == 7
    assert not AuditEvent.objects.filter(action="authorizer.rate_limit_set").exists()


def test_set_rate_limit_names_an_unknown_merchant(db):
    with pytest.raises(CommandError, match="no authorizer"):
        _command("wx0000000000000bad", "5")
