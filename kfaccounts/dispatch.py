"""How the kf-account services start background work: one pattern, after commit, ids only.

Every send is ``transaction.on_commit(partial(task, ...))``: a worker never claims a row its caller
may still roll back, and outside a transaction ``on_commit`` sends at once. Tasks call services, so
services cannot import the tasks module at import time; the functions here are the one place that
does, when first called.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from django.db import transaction

from audit.services import Actor


def deletions_send(ids: Sequence[int], *, authorizer_id: int | None = None, backlog: bool = False) -> None:
    """Start these deletions: the batch task of each merchant they belong to (tasks.dispatch_deletions).

    ``authorizer_id``: they are all that merchant's (one request's), so no query is needed to group
    them; ``backlog``: that merchant now has more than one batch of work, and waits its turn.
    """
    from kfaccounts import tasks  # tasks → services → dispatch: imported on use, here only

    transaction.on_commit(partial(tasks.dispatch_deletions, list(ids), authorizer_id=authorizer_id, backlog=backlog))


def deletions_continue_send(*, authorizer_id: int) -> None:
    """Queue the merchant's next batch (its current one took a full batch and more are due)."""
    from kfaccounts import tasks

    transaction.on_commit(partial(tasks.queue_batch, authorizer_id, backlog=True))


def kf_accounts_sync_send(*, authorizer_id: int, actor: Actor) -> None:
    from kfaccounts import tasks

    transaction.on_commit(partial(tasks.sync_kf_accounts.delay, authorizer_id, actor.kind, actor.label, actor.id))
