"""Issue 15: a merchant's pattern cannot freeze a worker, and one rule cannot queue runs without end."""

from __future__ import annotations

import time

import pytest

from cleanup import services
from cleanup.models import CleanupRun, RunStatus
from tests.cleanup.conftest import STAFF, serve_kf_list

pytestmark = pytest.mark.django_db

RULE = {"name": "hostile", "crontab": "30 4 * * *", "pattern_kind": "regex"}
# Long accounts of the kind that made Python's re backtrack for ever ({10}: 3.8 s, {40}: no end).
LONG = ["a" * 40 + "@shop", "a@" * 20 + "shop", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "x" * 30 + "@shop"]


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer(alias="shop")


@pytest.fixture
def client(api_client_for, merchant):
    return api_client_for(merchant)


@pytest.mark.parametrize("pattern", [r"(?:.*){40}!", r"(?:a|aa|@)*!"])
def test_a_catastrophic_pattern_is_accepted_and_its_dry_run_finishes_at_once(
    client, wechat, pattern, django_capture_on_commit_callbacks
):
    serve_kf_list(wechat, *LONG)
    created = client.post("/api/v1/cleanup-rules/", {**RULE, "pattern": pattern}, format="json")
    assert created.status_code == 201, created.content
    started_at = time.perf_counter()
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/v1/cleanup-rules/{created.json()['id']}/dry-run/")
    elapsed = time.perf_counter() - started_at
    assert started.status_code == 202, started.content
    run = client.get(f"/api/v1/cleanup-runs/{started.json()['id']}/").json()
    assert (run["status"], run["present_count"], run["matched_count"]) == ("previewed", len(LONG), 0)
    # The request, the sync and the matching together; Python's re did not finish {40} at all.
    assert elapsed < 10, elapsed


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        (r"(a)\1@shop", "back-references"),
        (r"(?<!x)temp.*", "look-arounds"),
        (r"(?:.{0,9}x){40}", "too complex"),
    ],
)
def test_patterns_the_linear_engine_refuses_answer_400_saying_why(client, pattern, says):
    response = client.post("/api/v1/cleanup-rules/", {**RULE, "pattern": pattern}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and says in " ".join(error["fields"]["pattern"])


def test_a_second_run_while_one_is_open_is_refused_with_409(client, wechat):
    rule = client.post("/api/v1/cleanup-rules/", {**RULE, "pattern": "temp.*"}, format="json").json()
    first = client.post(f"/api/v1/cleanup-rules/{rule['id']}/dry-run/")  # sent after commit, not run here
    assert first.status_code == 202
    assert CleanupRun.objects.get().status == RunStatus.PENDING
    second = client.post(f"/api/v1/cleanup-rules/{rule['id']}/dry-run/")
    assert second.status_code == 409, second.content
    assert second.json()["error"]["code"] == "cleanup_run_already_open"
    assert CleanupRun.objects.count() == 1
    # The schedule firing meanwhile starts nothing either; once the open run ended, a new one may start.
    assert services.cleanup_rule_fire(rule_id=rule["id"]) == []
    CleanupRun.objects.update(status=RunStatus.PREVIEWED)
    assert client.post(f"/api/v1/cleanup-rules/{rule['id']}/dry-run/").status_code == 202


def test_a_run_over_the_match_budget_fails_before_matching(wechat, merchant, make_rule, run_rule, settings):
    serve_kf_list(wechat, *LONG)
    rule = make_rule(merchant, pattern=r"(?:.*){40}!", pattern_kind="regex")
    settings.CLEANUP_MATCH_BUDGET = 1000  # far below 4 accounts x ~40 characters x the program's size
    run = run_rule(rule, dry_run=True)
    assert (run.status, run.reason) == (RunStatus.FAILED, "match_budget_exceeded")
    assert "CLEANUP_MATCH_BUDGET" in run.message and not run.items.exists()
    pattern = services.criteria_for(rule).pattern
    assert pattern is not None and services.match_work(pattern, LONG) > settings.CLEANUP_MATCH_BUDGET


def test_a_run_whose_worker_died_is_swept_back_and_sent_again(merchant, make_rule, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from tests.cleanup.conftest import runs_sent

    rule = make_rule(merchant, pattern="temp*")
    (run,) = services.cleanup_run_request(rule=rule, actor=STAFF, dry_run=True, trigger="test")
    now = timezone.now()
    (claimed,) = CleanupRun.objects.filter(pk=run.pk).claim(now=now, lease=services.RUN_LEASE)
    assert CleanupRun.objects.renew([claimed], lease=services.RUN_LEASE) == 1  # the heartbeat's call
    CleanupRun.objects.filter(pk=run.pk).update(lease_expires_at=now - timedelta(seconds=1))
    with django_capture_on_commit_callbacks() as sent:
        assert services.cleanup_runs_sweep() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING and run.lease_expires_at is None
    assert runs_sent(sent) == [run.pk]  # sent again at once, not after the unsent delay
    # A late write of the dead worker's claim changes nothing (the sweep moved the row on).
    assert not CleanupRun.objects.release(claimed, status=RunStatus.FAILED)
    # A pending run whose message was lost is sent again once it has waited RUN_RESEND_AFTER.
    with django_capture_on_commit_callbacks() as quiet:
        services.cleanup_runs_sweep()
    assert runs_sent(quiet) == []
    CleanupRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(minutes=3))
    with django_capture_on_commit_callbacks() as resent:
        services.cleanup_runs_sweep()
    assert runs_sent(resent) == [run.pk]
