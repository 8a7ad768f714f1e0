"""Issue 9 end to end: beat fires a cleanup rule on a short interval, a real worker runs it against
the sandbox, the deletions succeed, and the merchant's webhook receivers (small servers in this
test) get correctly signed events, one of them only after failing first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import DEL, Stack, eventually
from tests.webhooks.receiver import Receiver, start_receiver
from webhooks import signing

pytestmark = pytest.mark.e2e

LIST = "/cgi-bin/customservice/getkflist"


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    healthy, flaky = start_receiver(), start_receiver()
    flaky.answers = [500, 503]  # its first two deliveries fail; retries must bring them
    yield healthy, flaky
    healthy.close()
    flaky.close()


def _events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every event the receiver accepted (200), each checked as docs/webhooks.md tells receivers to."""
    seen = []
    for number, got in enumerate(receiver.received):
        if got.status != 200:
            continue  # a refused delivery is not an accepted event: its retry must come
        headers = {k.lower(): v for k, v in got.headers.items()}
        assert signing.signature_verify(secret, headers["kfp-timestamp"], headers["kfp-signature"], got.body), got
        event = json.loads(got.body)
        assert event["id"] == headers["kfp-event-id"] and event["type"] == headers["kfp-event-type"]
        seen.append({**event, "_attempt": int(headers["kfp-delivery-attempt"]), "_n": number})
    return seen


def test_beat_fires_a_rule_the_worker_deletes_and_signed_webhooks_arrive_also_after_failures(
    stack: Stack, receivers: tuple[Receiver, Receiver]
) -> None:
    healthy, flaky = receivers
    merchant = stack.new_merchant(kf=("temp1", "temp2", "staff1", "staff2"))
    temp1, temp2, staff1, staff2 = merchant.kf
    secrets = {}
    for receiver in (healthy, flaky):
        created = merchant.api.post("/api/v1/webhooks/", {"url": receiver.url})
        assert created.status_code == 201, created.text
        secrets[receiver.url] = created.json()["secret"]
    mark = stack.sandbox.mark()

    rule = merchant.api.post(
        "/api/v1/cleanup-rules/",
        {
            "name": "temporary accounts",
            "mode": "delete",
            "pattern": "temp*",
            "schedule_kind": "interval",
            "interval_seconds": 2,
        },
    )
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]

    finished = eventually(
        lambda: merchant.api.get(f"/api/v1/cleanup-rules/{rule_id}/runs/").json()["results"],
        lambda runs: any(r["status"] == "finished" and r["created_count"] == 2 for r in runs),
        timeout=60,
        what="beat to fire the rule and its run to finish",
    )
    stop = merchant.api.request("PATCH", f"/api/v1/cleanup-rules/{rule_id}/", json={"enabled": False})
    assert stop.status_code == 200, stop.text
    run = next(r for r in finished if r["status"] == "finished" and r["created_count"] == 2)
    assert (run["trigger"], run["dry_run"], run["succeeded_count"], run["matched_count"]) == ("schedule", False, 2, 2)
    detail = merchant.api.get(f"/api/v1/cleanup-runs/{run['id']}/").json()
    assert {i["kf_account"]: i["deletion_status"] for i in detail["items"]} == {temp1: "succeeded", temp2: "succeeded"}

    # WeChat: the run read the list first, then deleted exactly the two temporary accounts.
    calls = [c for c in stack.sandbox.calls(appid=merchant.appid, since=mark) if c["path"] in (LIST, DEL)]
    first_delete = next(i for i, c in enumerate(calls) if c["path"] == DEL)
    assert any(c["path"] == LIST for c in calls[:first_delete])
    assert sorted(c["body"]["kf_account"] for c in calls if c["path"] == DEL) == sorted([temp1, temp2])
    assert sorted(stack.sandbox.kf_accounts(merchant.appid)) == sorted([staff1, staff2])
    deletions = merchant.api.all_deletions()
    assert {(d["kf_account"], d["status"]) for d in deletions} == {(temp1, "succeeded"), (temp2, "succeeded")}

    def wanted(events: list[dict[str, Any]]) -> bool:
        deleted = {e["data"]["deletion"]["kf_account"] for e in events if e["type"] == "deletion.finished"}
        runs = {e["data"]["run"]["id"] for e in events if e["type"] == "cleanup_run.finished"}
        return deleted == {temp1, temp2} and run["id"] in runs

    healthy_events = eventually(
        lambda: _events(healthy, secrets[healthy.url]), wanted, timeout=30, what="the healthy receiver's events"
    )
    flaky_events = eventually(
        lambda: _events(flaky, secrets[flaky.url]), wanted, timeout=60, what="the failing receiver's retried events"
    )
    for event in healthy_events:
        assert event["authorizer_appid"] == merchant.appid
    done = [e for e in healthy_events if e["type"] == "deletion.finished"]
    assert {(e["data"]["deletion"]["status"], e["data"]["deletion"]["requested_by"]["kind"]) for e in done} == {
        ("succeeded", "schedule")
    }
    # The flaky receiver answered 500 and 503 first: those deliveries came again, same event, same body.
    assert len(flaky.received) >= len({e["id"] for e in flaky_events}) + 2
    retried = [e for e in flaky_events if e["_attempt"] > 1]
    assert retried, flaky_events
    bodies: dict[str, set[bytes]] = {}
    for got in flaky.received:
        bodies.setdefault(got.headers["Kfp-Event-Id"], set()).add(got.body)
    assert all(len(b) == 1 for b in bodies.values())
    # The delivery log says the same.
    endpoints = merchant.api.get("/api/v1/webhooks/").json()["results"]
    flaky_id = next(e["id"] for e in endpoints if e["url"] == flaky.url)
    log = merchant.api.get(f"/api/v1/webhooks/{flaky_id}/deliveries/").json()["results"]
    assert any(d["attempts"] > 1 and d["status"] == "succeeded" for d in log), log
    assert any(a["status_code"] in (500, 503) for d in log for a in d["attempt_log"])
