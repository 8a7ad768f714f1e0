"""Celery tasks of the authorizers app: thin, ids only, retries on named transient errors."""

from __future__ import annotations

from celery import shared_task

from authorizers import services
from platform_app.wechat.errors import Transient


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(Transient,),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)
def process_authorization_event(self, event_id: int) -> None:
    try:
        services.component_event_process(event_id=event_id)
    except Transient:
        if self.request.retries >= self.max_retries:
            services.component_event_fail(event_id=event_id, error="WeChat unavailable; retries exhausted")
        raise
