"""The admin: operators dry-run rules, upload dated lists, approve runs after seeing the list."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cleanup.models import CleanupRule, CleanupRun, ListedAccount, RunStatus
from kfaccounts.models import DeletionRequest
from tests.cleanup.conftest import serve_deletes, serve_kf_list
from tests.console.conftest import client_for
from tests.kfaccounts.conftest import DEL_URL, calls_to

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:cleanup_cleanuprun_changelist")


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer(alias="shop", nickname="Shop")


def _stopped_run(wechat, merchant, make_rule, run_rule) -> CleanupRun:
    serve_kf_list(wechat, "temp1@shop", "temp2@shop", "temp3@shop", "staff@shop")
    serve_deletes(wechat)
    run = run_rule(make_rule(merchant, pattern="temp*"))
    assert run.status == RunStatus.AWAITING_APPROVAL
    return run


def test_an_operator_sees_the_list_then_approves_and_the_follow_up_run_deletes(
    wechat,
    merchant,
    make_rule,
    run_rule,
    operator,
    django_capture_on_commit_callbacks,
):
    run = _stopped_run(wechat, merchant, make_rule, run_rule)
    client = client_for(operator)
    page = client.get(reverse("admin:cleanup_cleanuprun_change", args=[run.pk]))
    assert page.status_code == 200 and b'data-action="approve"' in page.content

    confirm = client.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk]})
    assert confirm.status_code == 200
    listed = re.findall(r"<td data-account>([^<]+)</td>", confirm.content.decode())
    assert sorted(listed) == ["temp1@shop", "temp2@shop", "temp3@shop"]
    assert CleanupRun.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL  # nothing decided yet

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk], "confirm": "yes"})
    assert done.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.APPROVED and run.decided_by_label == operator.username
    follow_up = CleanupRun.objects.get(approved_from=run)
    assert follow_up.status == RunStatus.EXECUTING or follow_up.status == RunStatus.FINISHED
    assert sorted(d.kf_account for d in DeletionRequest.objects.all()) == ["temp1@shop", "temp2@shop", "temp3@shop"]
    assert len(calls_to(wechat, DEL_URL)) == 3


def test_a_viewer_can_look_but_not_approve(wechat, merchant, make_rule, run_rule, viewer):
    run = _stopped_run(wechat, merchant, make_rule, run_rule)
    client = client_for(viewer)
    page = client.get(reverse("admin:cleanup_cleanuprun_change", args=[run.pk]))
    assert page.status_code == 200 and b'data-action="approve"' not in page.content
    response = client.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk], "confirm": "yes"})
    assert response.status_code in (200, 302, 403)
    assert CleanupRun.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert not DeletionRequest.objects.exists()


def test_an_operator_declines_and_nothing_is_deleted(wechat, merchant, make_rule, run_rule, operator):
    run = _stopped_run(wechat, merchant, make_rule, run_rule)
    client_for(operator).post(RUNS, {"action": "decline_runs", "_selected_action": [run.pk]})
    assert CleanupRun.objects.get(pk=run.pk).status == RunStatus.DECLINED
    assert not DeletionRequest.objects.exists()


def test_rules_are_created_and_dry_run_from_the_admin_with_a_schedule_in_django_celery_beat(
    wechat,
    merchant,
    operator,
    django_capture_on_commit_callbacks,
):
    client = client_for(operator)
    form = {
        "authorizer": merchant.pk,
        "name": "leftover temps",
        "mode": "dry_run",
        "enabled": "on",
        "combine": "all",
        "pattern": "temp*",
        "pattern_kind": "glob",
        "schedule_kind": "crontab",
        "crontab": "15 2 * * 1",
        "timezone": "Asia/Shanghai",
        "listed_accounts-TOTAL_FORMS": "0",
        "listed_accounts-INITIAL_FORMS": "0",
    }
    bad = client.post(reverse("admin:cleanup_cleanuprule_add"), {**form, "pattern": r"(a)\1", "pattern_kind": "regex"})
    assert bad.status_code == 200 and b"back-references" in bad.content
    assert not CleanupRule.objects.exists()
    created = client.post(reverse("admin:cleanup_cleanuprule_add"), form)
    assert created.status_code == 302, created.content.decode()[:3000]
    rule = CleanupRule.objects.get()
    assert rule.periodic_task is not None and rule.periodic_task.crontab.day_of_week == "1"

    serve_kf_list(wechat, "temp1@shop", "staff@shop")
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(reverse("admin:cleanup_cleanuprule_dry_run", args=[rule.pk]))
    assert started.status_code == 302
    run = CleanupRun.objects.get()
    assert (run.status, run.trigger, run.requested_by_label) == (RunStatus.PREVIEWED, "admin", operator.username)
    page = client.get(reverse("admin:cleanup_cleanuprun_change", args=[run.pk]))
    assert b"temp1@shop" in page.content


def test_a_csv_list_is_uploaded_in_the_admin_and_a_bad_file_changes_nothing(merchant, make_rule, operator):
    rule = make_rule(merchant, use_list=True)
    client = client_for(operator)
    url = reverse("admin:cleanup_cleanuprule_upload_list", args=[rule.pk])
    bad = client.post(url, {"csv": SimpleUploadedFile("l.csv", b"leaver@shop,tomorrow\n", "text/csv")})
    assert bad.status_code == 400 and not ListedAccount.objects.exists()
    good = b"kf_account,delete_on,note\nleaver@shop,2026-12-31,left\nintern@shop,2027-01-15,\n"
    assert client.post(url, {"csv": SimpleUploadedFile("l.csv", good, "text/csv")}).status_code == 302
    assert sorted(ListedAccount.objects.values_list("kf_account", flat=True)) == ["intern@shop", "leaver@shop"]


def test_a_runs_page_is_read_only_lists_accounts_naturally_sorted_with_their_reasons_in_words(
    wechat, merchant, make_rule, run_rule, operator
):
    serve_kf_list(wechat, "temp10@shop", "temp2@shop", "temp1@shop", "staff@shop")
    serve_deletes(wechat)
    run = run_rule(make_rule(merchant, pattern="temp*"))
    client = client_for(operator)
    html = client.get(reverse("admin:cleanup_cleanuprun_change", args=[run.pk])).content.decode()
    # No Save button on a record (approve and decline are actions with their own buttons).
    assert 'name="_save"' not in html and 'name="_continue"' not in html and 'name="_addanother"' not in html
    accounts = re.findall(r'<tr data-account="([^"]+)">', html)
    assert accounts[:3] == ["temp1@shop", "temp2@shop", "temp10@shop"]
    assert "matches pattern &#x27;temp*&#x27;" in html and "[&quot;matches" not in html
    confirm = client.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk]}).content.decode()
    assert re.findall(r"<td data-account>([^<]+)</td>", confirm) == ["temp1@shop", "temp2@shop", "temp10@shop"]
