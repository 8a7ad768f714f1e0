"""How the webhook services start background work: one pattern, after commit, ids only.

Every send is ``transaction.on_commit(partial(task, ...))`` (see kfaccounts/dispatch.py): a worker
never claims a delivery its caller may still roll back, and outside a transaction ``on_commit``
sends at once. Tasks call services, so the tasks module is imported here, on first use, only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from django.db import transaction


def deliveries_send(ids: Sequence[int]) -> None:
    from webhooks import tasks  # tasks → services → dispatch: imported on use, here only

    transaction.on_commit(partial(tasks.dispatch_deliveries, list(ids)))
