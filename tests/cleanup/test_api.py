"""/api/v1/cleanup-rules/ and /api/v1/cleanup-runs/: scoped to the merchant, errors in the envelope."""

from __future__ import annotations

import pytest

from cleanup.models import CleanupRule, CleanupRun
from kfaccounts.models import DeletionRequest
from tests.cleanup.conftest import serve_deletes, serve_kf_list
from tests.kfaccounts.conftest import DEL_URL, calls_to

pytestmark = pytest.mark.django_db

RULE = {"name": "expired invitations", "invite_statuses": ["expired"], "crontab": "30 4 * * *"}


@pytest.fixture
def merchant(make_authorizer, component_ready):
    return make_authorizer(alias="shop")


@pytest.fixture
def client(api_client_for, merchant):
    return api_client_for(merchant)


def test_a_merchant_creates_reads_changes_and_deletes_its_rule(client):
    created = client.post("/api/v1/cleanup-rules/", RULE, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert (rule["mode"], rule["enabled"], rule["schedule_kind"], rule["timezone"]) == (
        "dry_run",
        True,
        "crontab",
        "Asia/Shanghai",
    )
    stored = CleanupRule.objects.get(pk=rule["id"])
    assert stored.periodic_task is not None and stored.periodic_task.enabled
    assert stored.periodic_task.crontab.hour == "4" and str(stored.periodic_task.crontab.timezone) == "Asia/Shanghai"

    assert client.get(f"/api/v1/cleanup-rules/{rule['id']}/").json()["name"] == "expired invitations"
    changed = client.patch(
        f"/api/v1/cleanup-rules/{rule['id']}/",
        {"mode": "delete", "schedule_kind": "interval", "interval_seconds": 3600},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    stored.refresh_from_db()
    assert stored.periodic_task.interval.every == 3600 and stored.periodic_task.crontab is None
    assert [r["id"] for r in client.get("/api/v1/cleanup-rules/").json()["results"]] == [rule["id"]]

    assert client.delete(f"/api/v1/cleanup-rules/{rule['id']}/").status_code == 204
    stored.refresh_from_db()
    assert stored.archived_at is not None and not stored.periodic_task.enabled
    assert client.get(f"/api/v1/cleanup-rules/{rule['id']}/").status_code == 404
    assert client.get("/api/v1/cleanup-rules/").json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "nothing selected", "crontab": "0 3 * * *"}, "selectors"),
        ({**RULE, "pattern": r"(a)\1", "pattern_kind": "regex"}, "pattern"),
        ({**RULE, "pattern": r"(?=temp)\w+", "pattern_kind": "regex"}, "pattern"),
        ({**RULE, "pattern": r"(?:.{0,9}x){40}", "pattern_kind": "regex"}, "pattern"),
        ({**RULE, "pattern": "(", "pattern_kind": "regex"}, "pattern"),
        ({**RULE, "crontab": "61 * * * *"}, "crontab"),
        ({**RULE, "crontab": "every day"}, "crontab"),
        ({**RULE, "schedule_kind": "interval", "interval_seconds": 5}, "interval_seconds"),
        ({**RULE, "timezone": "Mars/Olympus"}, "timezone"),
        ({**RULE, "invite_statuses": ["waiting"]}, "invite_statuses"),
        ({**RULE, "max_percent": 150}, "max_percent"),
        ({**RULE, "mode": "obliterate"}, "mode"),
        ({**RULE, "name": ""}, "name"),
        ({**RULE, "unbound_days": "ten"}, "unbound_days"),
    ],
)
def test_bad_rules_are_refused_with_400_naming_the_field_and_nothing_is_stored(client, body, field):
    response = client.post("/api/v1/cleanup-rules/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"], error
    # Every refusal reads like a serializer's, whichever layer found it (the serializer or the
    # service): messages in a list (or, for a list field, per position), never a bare string.
    assert all(isinstance(messages, (list, dict)) and messages for messages in error["fields"].values()), error
    assert not CleanupRule.objects.exists()


def test_another_merchants_rules_and_runs_answer_404(client, make_authorizer, api_client_for, make_rule):
    other = make_authorizer(alias="other")
    theirs = make_rule(other, pattern="temp*")
    run = CleanupRun.objects.create(rule=theirs, authorizer=other, trigger="test", requested_by_kind="system")
    for method, url in [
        ("get", f"/api/v1/cleanup-rules/{theirs.pk}/"),
        ("patch", f"/api/v1/cleanup-rules/{theirs.pk}/"),
        ("delete", f"/api/v1/cleanup-rules/{theirs.pk}/"),
        ("post", f"/api/v1/cleanup-rules/{theirs.pk}/dry-run/"),
        ("get", f"/api/v1/cleanup-rules/{theirs.pk}/runs/"),
        ("post", f"/api/v1/cleanup-rules/{theirs.pk}/runs/"),
        ("get", f"/api/v1/cleanup-rules/{theirs.pk}/listed-accounts/"),
        ("post", f"/api/v1/cleanup-rules/{theirs.pk}/listed-accounts/"),
        ("get", f"/api/v1/cleanup-runs/{run.pk}/"),
    ]:
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/cleanup-runs/").json()["results"] == []
    theirs.refresh_from_db()
    assert theirs.archived_at is None and CleanupRun.objects.count() == 1
    # Rules for every merchant are staff-only and invisible here.
    make_rule(None, pattern="temp*")
    assert client.get("/api/v1/cleanup-rules/").json()["results"] == []


def test_the_dry_run_endpoint_previews_and_the_run_shows_what_and_why(
    client, wechat, django_capture_on_commit_callbacks
):
    serve_kf_list(wechat, "temp1@shop", "staff@shop")
    serve_deletes(wechat)
    rule = client.post("/api/v1/cleanup-rules/", {**RULE, "pattern": "temp*", "combine": "any"}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/v1/cleanup-rules/{rule['id']}/dry-run/")
    assert started.status_code == 202, started.content
    run = client.get(f"/api/v1/cleanup-runs/{started.json()['id']}/").json()
    assert (run["status"], run["dry_run"], run["trigger"], run["created_count"]) == ("previewed", True, "api", 0)
    assert run["items"] == [
        {
            "kf_account": "temp1@shop",
            "action": "delete",
            "matched_by": ["matches pattern 'temp*'"],
            "skip_reason": "",
            "deletion_id": None,
            "deletion_status": None,
        }
    ]
    assert calls_to(wechat, DEL_URL) == [] and not DeletionRequest.objects.exists()
    runs = client.get(f"/api/v1/cleanup-rules/{rule['id']}/runs/").json()["results"]
    assert [r["id"] for r in runs] == [run["id"]]
    # A dry-run-mode rule cannot be run for real.
    refused = client.post(f"/api/v1/cleanup-rules/{rule['id']}/runs/")
    assert refused.status_code == 400 and "mode" in refused.json()["error"]["fields"]


def test_a_real_run_through_the_api_deletes_through_the_ordinary_deletions(
    client, wechat, django_capture_on_commit_callbacks
):
    serve_kf_list(wechat, "temp1@shop", "staff@shop", "staff2@shop")
    serve_deletes(wechat)
    rule = client.post(
        "/api/v1/cleanup-rules/", {**RULE, "pattern": "temp*", "combine": "any", "mode": "delete"}, format="json"
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/v1/cleanup-rules/{rule['id']}/runs/")
    assert started.status_code == 202
    deletions = client.get("/api/v1/deletions/").json()["results"]
    assert [(d["kf_account"], d["status"]) for d in deletions] == [("temp1@shop", "succeeded")]


def test_listed_accounts_are_set_through_the_api_and_bad_entries_change_nothing(client):
    rule = client.post("/api/v1/cleanup-rules/", {**RULE, "use_list": True}, format="json").json()
    url = f"/api/v1/cleanup-rules/{rule['id']}/listed-accounts/"
    good = {"accounts": [{"kf_account": "leaver@shop", "delete_on": "2026-12-31", "note": "left"}]}
    assert client.post(url, good, format="json").json() == {"saved": 1}
    bad_bodies: list[dict[str, object]] = [
        {"accounts": [{"kf_account": "not an account", "delete_on": "2026-12-31"}]},
        {"accounts": [{"kf_account": "a@shop", "delete_on": "31/12/2026"}]},
        {"accounts": []},
        {"accounts": "a@shop"},
    ]
    for bad in bad_bodies:
        response = client.post(url, bad, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert response.json()["error"]["code"] == "invalid_input"
    listed = client.get(url).json()["results"]
    assert [(a["kf_account"], a["delete_on"], a["note"]) for a in listed] == [("leaver@shop", "2026-12-31", "left")]
    replaced = {"accounts": [{"kf_account": "other@shop", "delete_on": "2027-01-01"}], "replace": True}
    assert client.post(url, replaced, format="json").json() == {"saved": 1}
    assert [a["kf_account"] for a in client.get(url).json()["results"]] == ["other@shop"]


def test_the_rule_example_in_docs_cleanup_md_is_accepted_and_answered_as_documented(client):
    import json
    import re
    import shlex
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cleanup.md").read_text(encoding="utf-8")
    example = docs[docs.index("<!-- cleanup-rule-example") :]
    command, answer = re.findall(r"```(?:sh|json)\n(.*?)```", example, re.S)[:2]
    words = shlex.split(command.replace("\\\n", " "))
    body = json.loads(words[words.index("-d") + 1])
    assert words[-1].endswith("/api/v1/cleanup-rules/")
    response = client.post("/api/v1/cleanup-rules/", body, format="json")
    assert response.status_code == 201, response.content
    documented, got = json.loads(answer), response.json()
    assert set(documented) == set(got)  # every field of the answer is documented, none invented
    for field in set(documented) - {"id", "created_at", "updated_at"}:
        assert got[field] == documented[field], field
    task = CleanupRule.objects.get(pk=got["id"]).periodic_task
    assert task is not None and task.crontab is not None and task.crontab.hour == "4"
