"""A rule's run: re-sync first, select, then preview, stop at the blast radius, or delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from authorizers.models import AuthorizerStatus
from cleanup import services
from cleanup.models import CleanupRun, ItemAction, RunItem, RunStatus, SkipReason
from kfaccounts.models import DeletionRequest, DeletionStatus, KfAccount
from tests.cleanup.conftest import STAFF, kf_item, runs_sent, serve_deletes, serve_kf_list
from tests.kfaccounts.conftest import DEL_URL, LIST_URL, body_of, calls_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer(alias="shop")


def _items(run: CleanupRun, action: str) -> dict[str, RunItem]:
    return {item.kf_account: item for item in run.items.filter(action=action)}


def test_a_run_re_syncs_first_and_acts_on_what_wechat_lists_now_not_on_the_stale_mirror(
    wechat, merchant, make_rule, run_rule
):
    # The mirror (last sync) still has temp_old, which WeChat has since dropped; temp_new is new.
    serve_kf_list(wechat, "temp_old@shop", "staff@shop")
    from audit.services import Actor
    from kfaccounts.services import kf_accounts_sync

    kf_accounts_sync(authorizer=merchant, actor=Actor.system("earlier sync"))
    serve_kf_list(wechat, "temp_new@shop", "staff@shop", "temp2@shop")
    serve_deletes(wechat)
    rule = make_rule(merchant, pattern="temp*", max_percent=100)

    run = run_rule(rule)

    assert run.status == RunStatus.FINISHED, run.message
    deleted = sorted(body_of(c)["kf_account"] for c in calls_to(wechat, DEL_URL))
    assert deleted == ["temp2@shop", "temp_new@shop"]
    # getkflist came before the first delete.
    paths = [c.request.url.split("?")[0] for c in wechat.calls]
    assert paths.index(LIST_URL, 1) < paths.index(DEL_URL)
    assert set(_items(run, ItemAction.DELETE)) == {"temp2@shop", "temp_new@shop"}
    assert (run.present_count, run.matched_count, run.created_count, run.succeeded_count) == (3, 2, 2, 2)
    requests = DeletionRequest.objects.order_by("kf_account")
    assert [(d.kf_account, d.status, d.requested_by_kind) for d in requests] == [
        ("temp2@shop", DeletionStatus.SUCCEEDED, "schedule"),
        ("temp_new@shop", DeletionStatus.SUCCEEDED, "schedule"),
    ]
    assert {d.requested_by_id for d in requests} == {f"cleanup_rule:{rule.pk}"}
    assert AuditEvent.objects.filter(action="deletion.requested", actor_kind="schedule").count() == 2


def test_a_dry_run_lists_what_it_would_delete_and_why_and_creates_nothing(wechat, merchant, make_rule, run_rule):
    serve_kf_list(
        wechat,
        "temp1@shop",
        kf_item("guest@shop", invite_wx="guest_wx", invite_status="expired"),
        "staff@shop",
    )
    serve_deletes(wechat)
    rule = make_rule(merchant, pattern="temp*", invite_statuses=["expired"], combine="any", max_percent=100)

    run = run_rule(rule, dry_run=True)

    assert run.status == RunStatus.PREVIEWED
    assert run.dry_run and run.finished_at is not None
    items = _items(run, ItemAction.DELETE)
    assert {a: i.matched_by for a, i in items.items()} == {
        "temp1@shop": ["matches pattern 'temp*'"],
        "guest@shop": ["invitation expired"],
    }
    assert all(i.deletion_id is None for i in items.values())
    assert not DeletionRequest.objects.exists()
    assert calls_to(wechat, DEL_URL) == []
    assert len(calls_to(wechat, LIST_URL)) == 1  # the preview still reads the current list


def test_a_rule_in_dry_run_mode_fires_as_a_preview_and_cannot_be_run_for_real(
    wechat, merchant, make_rule, django_capture_on_commit_callbacks
):
    rule = make_rule(merchant, mode="dry_run", pattern="temp*")
    with django_capture_on_commit_callbacks() as callbacks:
        (run,) = services.cleanup_rule_fire(rule_id=rule.pk)
    assert runs_sent(callbacks) == [run.pk]
    assert run.dry_run and run.trigger == "schedule" and run.requested_by_kind == "schedule"
    with pytest.raises(services.InvalidRule, match="dry-run mode"):
        services.cleanup_run_request(rule=rule, actor=STAFF, dry_run=False, trigger="api")


def test_over_the_account_limit_nothing_is_deleted_until_an_operator_approves(
    wechat, merchant, make_rule, run_rule, django_capture_on_commit_callbacks
):
    accounts = [f"temp{i}@shop" for i in range(25)] + [f"staff{i}@shop" for i in range(25)]
    serve_kf_list(wechat, *accounts)
    serve_deletes(wechat)
    rule = make_rule(merchant, pattern="temp*")  # defaults: 20 accounts or 50 %

    stopped = run_rule(rule)

    assert stopped.status == RunStatus.AWAITING_APPROVAL
    assert stopped.reason == "over_limit" and "limit is 20 accounts" in stopped.message
    assert (stopped.limit_accounts, stopped.limit_percent, stopped.matched_count) == (20, 50, 25)
    assert len(_items(stopped, ItemAction.DELETE)) == 25  # the list the operator sees
    assert not DeletionRequest.objects.exists() and calls_to(wechat, DEL_URL) == []

    # Meanwhile one listed account went away and a new matching one appeared.
    serve_kf_list(wechat, *[a for a in accounts if a != "temp0@shop"], "temp_late@shop")
    with django_capture_on_commit_callbacks() as callbacks:
        follow_up = services.cleanup_run_approve(run=stopped, actor=STAFF)
    assert runs_sent(callbacks) == [follow_up.pk]
    stopped.refresh_from_db()
    assert stopped.status == RunStatus.APPROVED and stopped.decided_by_label == STAFF.label
    with pytest.raises(services.RunNotDecidable):
        services.cleanup_run_approve(run=stopped, actor=STAFF)

    done = run_rule.execute(follow_up.pk)

    assert done.status == RunStatus.FINISHED and done.approved_from_id == stopped.pk
    deleted = sorted(body_of(c)["kf_account"] for c in calls_to(wechat, DEL_URL))
    assert deleted == sorted(f"temp{i}@shop" for i in range(1, 25))
    assert _items(done, ItemAction.SKIP)["temp_late@shop"].skip_reason == SkipReason.NOT_APPROVED
    assert done.succeeded_count == 24


def test_over_the_percentage_limit_the_run_stops_and_a_per_rule_limit_overrides_the_default(
    wechat, merchant, make_rule, run_rule
):
    serve_kf_list(wechat, "temp1@shop", "temp2@shop", "temp3@shop", "staff@shop")
    serve_deletes(wechat)
    strict = make_rule(merchant, pattern="temp*")
    assert run_rule(strict).status == RunStatus.AWAITING_APPROVAL  # 3 of 4 is 75 % > 50 %
    tight = make_rule(merchant, pattern="temp*", max_accounts=2, max_percent=100)
    assert run_rule(tight).status == RunStatus.AWAITING_APPROVAL  # 3 > 2
    loose = make_rule(merchant, pattern="temp*", max_percent=75)
    run = run_rule(loose)
    assert run.status == RunStatus.FINISHED and run.succeeded_count == 3


def test_a_declined_run_deletes_nothing(wechat, merchant, make_rule, run_rule):
    serve_kf_list(wechat, "temp1@shop", "temp2@shop")
    rule = make_rule(merchant, pattern="temp*")
    stopped = run_rule(rule)
    assert stopped.status == RunStatus.AWAITING_APPROVAL
    services.cleanup_run_decline(run=stopped, actor=STAFF)
    stopped.refresh_from_db()
    assert stopped.status == RunStatus.DECLINED
    with pytest.raises(services.RunNotDecidable):
        services.cleanup_run_approve(run=stopped, actor=STAFF)
    assert not DeletionRequest.objects.exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"verify_type_id": -1}, "not_eligible"),  # an uncertified Official Account
        ({"func_ids": [2, 3]}, "not_eligible"),  # no kf permission set
        ({"status": AuthorizerStatus.REVOKED}, "not_eligible"),
    ],
)
def test_never_for_an_ineligible_or_revoked_merchant_and_wechat_is_never_called(
    wechat, merchant, make_rule, run_rule, change, reason
):
    serve_kf_list(wechat, "temp1@shop")
    serve_deletes(wechat)
    rule = make_rule(merchant, pattern="temp*", max_percent=100)
    type(merchant).objects.filter(pk=merchant.pk).update(**change)

    run = run_rule(rule)

    assert (run.status, run.reason) == (RunStatus.REFUSED, reason)
    assert run.message  # the policy's reasons
    assert len(wechat.calls) == 0
    assert not DeletionRequest.objects.exists()
    assert AuditEvent.objects.filter(action="cleanup_run.refused", outcome=reason).exists()


def test_a_revocation_seen_during_the_sync_refuses_the_run(wechat, merchant, make_rule, run_rule):
    wechat.get(LIST_URL, json={"errcode": 61003, "errmsg": "component is not authorized by this account"})
    serve_deletes(wechat)
    run = run_rule(make_rule(merchant, pattern="temp*"))
    assert (run.status, run.reason) == (RunStatus.REFUSED, "authorization_revoked")
    assert calls_to(wechat, DEL_URL) == []


def test_a_sync_that_keeps_failing_is_retried_then_the_run_fails_without_deleting(
    wechat, merchant, make_rule, run_rule
):
    wechat.get(LIST_URL, json={"errcode": -1, "errmsg": "system error"})
    rule = make_rule(merchant, pattern="temp*")
    run = run_rule(rule)
    assert run.status == RunStatus.PENDING and run.next_attempt_at is not None  # retried later
    for _ in range(2):
        CleanupRun.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
        run = run_rule.execute(run.pk)
    assert (run.status, run.reason, run.attempts) == (RunStatus.FAILED, "sync_failed", 3)
    assert not DeletionRequest.objects.exists()


def test_a_rule_for_every_merchant_runs_for_each_active_one_and_refuses_the_ineligible(
    wechat, make_authorizer, component_ready, make_rule, django_capture_on_commit_callbacks
):
    good = make_authorizer(alias="good")
    uncertified = make_authorizer(alias="bad", verify_type_id=-1)
    make_authorizer(alias="gone", status=AuthorizerStatus.REVOKED)
    serve_kf_list(wechat, "temp1@good")
    serve_deletes(wechat)
    rule = make_rule(None, pattern="temp*", max_percent=100)
    runs = services.cleanup_rule_fire(rule_id=rule.pk)
    assert {r.authorizer_id for r in runs} == {good.pk, uncertified.pk}
    # A second firing while those are open starts nothing new.
    assert services.cleanup_rule_fire(rule_id=rule.pk) == []

    with django_capture_on_commit_callbacks(execute=True):
        for run in runs:
            services.cleanup_run_execute(run_id=run.pk)
    services.cleanup_runs_finish()
    by_merchant = {r.authorizer_id: r for r in CleanupRun.objects.all()}
    assert by_merchant[good.pk].status == RunStatus.FINISHED
    assert by_merchant[uncertified.pk].status == RunStatus.REFUSED
    assert [body_of(c)["kf_account"] for c in calls_to(wechat, DEL_URL)] == ["temp1@good"]


def test_listed_accounts_are_deleted_on_their_date_and_missing_ones_are_skipped_with_a_reason(
    wechat, merchant, make_rule, run_rule
):
    serve_kf_list(wechat, "leaver@shop", "later@shop", "staff@shop")
    serve_deletes(wechat)
    rule = make_rule(merchant, use_list=True, max_percent=100)
    today = timezone.now().date()
    entries = services.listed_entries_from_csv(
        "kf_account,delete_on,note\n"
        f"leaver@shop,{today - timedelta(days=1)},left in November\n"
        f"later@shop,{today + timedelta(days=30)},\n"
        f"gone@shop,{today},already removed by hand\n"
    )
    assert services.cleanup_listed_accounts_set(rule=rule, entries=entries, actor=STAFF) == 3

    run = run_rule(rule)

    assert [body_of(c)["kf_account"] for c in calls_to(wechat, DEL_URL)] == ["leaver@shop"]
    assert _items(run, ItemAction.SKIP)["gone@shop"].skip_reason == SkipReason.NOT_PRESENT
    assert "later@shop" not in _items(run, ItemAction.SKIP) | _items(run, ItemAction.DELETE)


def test_accounts_with_a_deletion_already_under_way_are_skipped(wechat, merchant, make_rule, run_rule):
    serve_kf_list(wechat, "temp1@shop", "temp2@shop", "staff@shop", "staff2@shop")
    serve_deletes(wechat)
    # Running on another worker: a pending one would be taken by the merchant's next batch, which is
    # the existing deletion doing its work, not the rule asking twice.
    DeletionRequest.objects.create(
        authorizer=merchant, kf_account="temp1@shop", requested_by_kind="api_key", status="running"
    )
    run = run_rule(make_rule(merchant, pattern="temp*"))
    assert _items(run, ItemAction.SKIP)["temp1@shop"].skip_reason == SkipReason.DELETION_ACTIVE
    assert [body_of(c)["kf_account"] for c in calls_to(wechat, DEL_URL)] == ["temp2@shop"]
    assert (run.matched_count, run.created_count, run.skipped_count) == (2, 1, 1)


def test_unbound_accounts_are_tracked_across_syncs(wechat, merchant, make_rule, run_rule):
    serve_kf_list(wechat, "temp1@shop", kf_item("bound@shop", kf_wx="someone"))
    serve_deletes(wechat)
    rule = make_rule(merchant, unbound_days=30, max_percent=100)
    first = run_rule(rule, dry_run=True)
    assert _items(first, ItemAction.DELETE) == {}  # unbound since this sync: 0 days
    KfAccount.objects.filter(kf_account="temp1@shop").update(unbound_since=timezone.now() - timedelta(days=31))
    second = run_rule(rule, dry_run=True)
    assert list(_items(second, ItemAction.DELETE)) == ["temp1@shop"]
    assert KfAccount.objects.get(kf_account="bound@shop").unbound_since is None


def test_the_run_finished_event_reaches_the_merchants_webhook_with_the_outcomes(
    wechat, merchant, make_rule, run_rule, settings
):
    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_endpoint_register

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600.0
    webhook_endpoint_register(
        authorizer=merchant, url="http://127.0.0.1:9/hook", actor=STAFF, event_types=["cleanup_run.finished"]
    )
    serve_kf_list(wechat, "temp1@shop", "staff@shop")
    serve_deletes(wechat)
    run = run_rule(make_rule(merchant, pattern="temp*", max_percent=100))
    (delivery,) = WebhookDelivery.objects.filter(event_type="cleanup_run.finished")
    data = delivery.payload["data"]["run"]
    assert (data["id"], data["status"], data["succeeded"]) == (run.pk, "finished", 1)
    assert data["items"] == [
        {
            "kf_account": "temp1@shop",
            "action": "delete",
            "matched_by": ["matches pattern 'temp*'"],
            "skip_reason": "",
            "deletion_id": DeletionRequest.objects.get().pk,
            "deletion_status": "succeeded",
        }
    ]
