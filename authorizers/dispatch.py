"""How the authorizers services start background work: one pattern, after commit, ids only.

Every send is ``transaction.on_commit(partial(task.delay, ...))``: a task never runs against rows
its caller may still roll back, and outside a transaction ``on_commit`` sends at once. Tasks call
services, so services cannot import the tasks module at import time; the functions here are the
one place that does, when first called.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction


def authorization_event_process_send(*, event_id: int) -> None:
    from authorizers import tasks  # tasks → services → dispatch: imported on use, here only

    transaction.on_commit(partial(tasks.process_authorization_event.delay, event_id))


def authorizer_info_refresh_send(*, authorizer_id: int) -> None:
    from authorizers import tasks

    transaction.on_commit(partial(tasks.refresh_authorizer_info.delay, authorizer_id))
