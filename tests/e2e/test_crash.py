"""Issue 3 end to end: a worker SIGKILLed in the middle of a deletion loses nothing.

The delete call is held up at WeChat (the sandbox) while the worker's process group is killed, as a
crash or the OOM killer would. WeChat still carries the call out. Once a new worker is up, the
sweeper finds the expired lease and the deletion is tried again: WeChat answers 65401 and the
request ends `succeeded` (already gone) — one terminal state, at most two calls.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import DEL, Stack, del_calls, eventually

pytestmark = pytest.mark.e2e


def test_worker_killed_during_a_deletion_still_ends_it_exactly_once(stack: Stack) -> None:
    sandbox, db = stack.sandbox, stack.db
    merchant = stack.new_merchant(kf=("alice", "bob"))
    target = merchant.kf[0]
    sandbox.fault(path=DEL, appid=merchant.appid, latency_ms=3000)
    mark = sandbox.mark()

    deletion = merchant.api.request_deletion(target)
    merchant.api.wait_deletion(deletion["id"], lambda d: d["status"] == "running", what="the deletion to run")
    eventually(
        sandbox.stats,
        lambda s: s["in_flight"].get(merchant.appid, 0) >= 1,
        timeout=30,
        interval=0.05,
        what="the delete call to reach WeChat",
    )
    stack.kill_worker()
    assert merchant.api.deletion(deletion["id"])["status"] == "running"  # the crash left it claimed
    stack.start_worker()

    # Shipped defaults: the lease (8 s, no longer renewed once the worker died) and a sweep (2 s)
    # bring it back in seconds; the wait is generous for a loaded machine.
    done = merchant.api.wait_deletion(deletion["id"], timeout=90)

    assert (done["status"], done["reason"]) == ("succeeded", "already_gone"), done
    assert done["attempts"] == 2
    calls = del_calls(sandbox, merchant.appid, since=mark)
    assert 1 <= len(calls) <= 2
    assert [c["errcode"] for c in calls] == [0, 65401]  # the first call went through; the retry found it gone
    assert target not in sandbox.kf_accounts(merchant.appid)
    # Exactly one terminal state, and it stays: later sweeps change nothing.
    stack.wait_for_sweeps(2)
    assert merchant.api.deletion(deletion["id"]) == done
    assert len(del_calls(sandbox, merchant.appid, since=mark)) == len(calls)
    assert (
        db.value(
            "SELECT count(*) FROM kfaccounts_deletionrequest WHERE authorizer_id = %s AND kf_account = %s",
            merchant.authorizer_id,
            target,
        )
        == 1
    )
    terminal = db.rows(
        "SELECT action FROM audit_auditevent WHERE authorizer_appid = %s AND subject = %s "
        "AND action IN ('deletion.succeeded', 'deletion.failed', 'deletion.rejected')",
        merchant.appid,
        target,
    )
    assert terminal == [("deletion.succeeded",)]

    # The new worker carries on with the next deletion as usual.
    follow_up = merchant.api.wait_deletion(merchant.api.request_deletion(merchant.kf[1])["id"])
    assert follow_up["status"] == "succeeded"
