"""The periodic kf re-sync: every eligible merchant, through the de-duplicating sync request."""

from __future__ import annotations

import pytest

from authorizers.models import AuthorizerStatus
from kfaccounts.resync import kf_accounts_resync_all

pytestmark = pytest.mark.django_db


def test_kf_resync_asks_only_for_the_eligible_merchants(make_authorizer, django_capture_on_commit_callbacks):
    from kfaccounts.tasks import sync_kf_accounts

    eligible = make_authorizer()
    make_authorizer(verify_type_id=-1)
    make_authorizer(status=AuthorizerStatus.REVOKED)
    with django_capture_on_commit_callbacks() as resync:
        assert kf_accounts_resync_all() == 1
    assert [c.args[:2] for c in resync if c.func == sync_kf_accounts.delay] == [(eligible.pk, "schedule")]


def test_a_resync_joins_a_sync_already_queued_for_the_merchant(make_authorizer, django_capture_on_commit_callbacks):
    from kfaccounts.tasks import sync_kf_accounts

    make_authorizer()
    with django_capture_on_commit_callbacks() as first:
        kf_accounts_resync_all()
    with django_capture_on_commit_callbacks() as second:
        kf_accounts_resync_all()  # the first one's task has not started: nothing new is queued
    assert len([c for c in first if c.func == sync_kf_accounts.delay]) == 1
    assert [c for c in second if c.func == sync_kf_accounts.delay] == []
