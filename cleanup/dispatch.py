"""How the cleanup services start background work: named sends on ``dbkit.oncommit``, ids only.

Syncs are not sent from here: every sync is asked for through kfaccounts' de-duplicating
``kf_accounts_sync_request``. Tasks call services, so the tasks module is imported here on use only.
"""

from __future__ import annotations

from dbkit.oncommit import send_on_commit


def cleanup_run_send(run_id: int) -> None:
    from cleanup import tasks  # tasks → services → dispatch: imported on use, here only

    send_on_commit(tasks.execute_cleanup_run.delay, run_id)
