"""How the authorizers services start background work: named sends on ``dbkit.oncommit``, ids only.

Tasks call services, so services cannot import the tasks module at import time; the functions here
are the one place that does, when first called.
"""

from __future__ import annotations

from dbkit.oncommit import send_on_commit


def authorization_event_process_send(*, event_id: int) -> None:
    from authorizers import tasks  # tasks → services → dispatch: imported on use, here only

    send_on_commit(tasks.process_authorization_event.delay, event_id)


def authorizer_info_refresh_send(*, authorizer_id: int) -> None:
    from authorizers import tasks

    send_on_commit(tasks.refresh_authorizer_info.delay, authorizer_id, key=("info-refresh", authorizer_id))
