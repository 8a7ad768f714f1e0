"""How the cleanup services start background work: one pattern, after commit, ids only.

Every send is ``transaction.on_commit(partial(task.delay, ...))`` (see kfaccounts/dispatch.py). Tasks
call services, so the tasks modules are imported here on use only.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction


def cleanup_run_send(run_id: int) -> None:
    from cleanup import tasks  # tasks → services → dispatch: imported on use, here only

    transaction.on_commit(partial(tasks.execute_cleanup_run.delay, run_id))
