"""Issue 2 end to end: an expired authorizer token is refreshed once, however many ask at once.

Several processes (``manage.py shell``) with many threads each ask for the same merchant's token
at the same moment, after both WeChat and the platform's row say it has expired. The sandbox must
see exactly one ``api_authorizer_token`` call, and every caller must get the new token.
"""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from devtools import procs
from tests.e2e.harness import AUTHORIZER_TOKEN, Stack, del_calls, eventually

pytestmark = pytest.mark.e2e

PROCESSES = 4
MAX_THREADS = 25

# Runs in each process: N threads connect, wait for the go file, then all ask at once.
ASK = """
import hashlib, json, os, threading, time
from django.db import connection, connections
from authorizers.tokens import authorizer_token_get

tokens, errors = [], []
ready, go = threading.Barrier({threads} + 1, timeout=120), threading.Event()

def ask():
    try:
        connection.ensure_connection()
        ready.wait()
        go.wait(120)
        token = authorizer_token_get(authorizer_id={authorizer_id})
        tokens.append(hashlib.sha256(token.encode()).hexdigest())
    except Exception as exc:
        errors.append(type(exc).__name__ + ": " + str(exc))
    finally:
        connections.close_all()

threads = [threading.Thread(target=ask) for _ in range({threads})]
for thread in threads:
    thread.start()
ready.wait()
open({ready_file!r}, "w").close()
while not os.path.exists({go_file!r}):
    time.sleep(0.001)
go.set()
for thread in threads:
    thread.join()
print(json.dumps({{"tokens": tokens, "errors": errors}}))
"""


def _threads_per_process(stack: Stack) -> int:
    if not stack.db.is_postgres:
        return MAX_THREADS
    # Every thread holds a connection while it waits for the row lock; leave room for the
    # session's own processes and whatever else uses this server.
    limit = int(stack.db.value("SHOW max_connections"))
    in_use = stack.db.value("SELECT count(*) FROM pg_stat_activity")
    threads = min(MAX_THREADS, (limit - in_use - 25) // PROCESSES)
    assert threads >= 5, f"PostgreSQL has too few free connections ({limit} max, {in_use} in use)"
    return threads


def test_expired_authorizer_token_is_refreshed_once_for_many_threads_in_many_processes(stack: Stack) -> None:
    sandbox, db = stack.sandbox, stack.db
    merchant = stack.new_merchant(kf=("alice",))
    threads = _threads_per_process(stack)
    sandbox.control("POST", "/expire", {"what": "authorizer", "appid": merchant.appid})
    db.make_access_token_stale(merchant.authorizer_id)
    refreshes_before = db.value(
        "SELECT token_refresh_count FROM authorizers_authorizer WHERE id = %s", merchant.authorizer_id
    )
    mark = sandbox.mark()
    run_dir = stack.tmp / f"tokens-{merchant.appid}"
    run_dir.mkdir()
    go_file = run_dir / "go"
    askers = []
    for n in range(PROCESSES):
        code = ASK.format(
            threads=threads,
            authorizer_id=merchant.authorizer_id,
            ready_file=str(run_dir / f"ready-{n}"),
            go_file=str(go_file),
        )
        askers.append(
            subprocess.Popen(
                procs.manage("shell", "-c", code),
                env=stack.env,
                cwd=stack.tmp,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
        )
    try:
        eventually(
            lambda: sorted(p.name for p in run_dir.glob("ready-*")),
            lambda ready: len(ready) == PROCESSES,
            timeout=90,
            what="every process to have its threads connected and waiting",
        )
        go_file.touch()
        outputs = [asker.communicate(timeout=120) for asker in askers]
    finally:
        for asker in askers:
            if asker.poll() is None:
                asker.kill()

    results = []
    for asker, (out, err) in zip(askers, outputs, strict=True):
        assert asker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    tokens = [token for r in results for token in r["tokens"]]
    assert len(tokens) == PROCESSES * threads
    assert len(set(tokens)) == 1, "callers got different tokens"
    refreshes = sandbox.calls(path=AUTHORIZER_TOKEN, appid=merchant.appid, since=mark)
    assert len(refreshes) == 1, [(c["seq"], c["errcode"]) for c in refreshes]
    assert refreshes[0]["errcode"] == 0
    assert (
        db.value("SELECT token_refresh_count FROM authorizers_authorizer WHERE id = %s", merchant.authorizer_id)
        == refreshes_before + 1
    )

    # What every caller got is the live token WeChat issued: a deletion goes through with it.
    deletion = merchant.api.request_deletion(merchant.kf[0])
    assert merchant.api.wait_deletion(deletion["id"])["status"] == "succeeded"
    (call,) = del_calls(sandbox, merchant.appid, since=mark)
    assert call["errcode"] == 0
    assert hashlib.sha256(call["query"]["access_token"].encode()).hexdigest() == tokens[0]
    assert len(sandbox.calls(path=AUTHORIZER_TOKEN, appid=merchant.appid, since=mark)) == 1
    print(f"\n{PROCESSES} processes x {threads} threads asked for an expired token: 1 refresh")
