"""Celery tasks of the authorizers app: thin, ids only, retries on named transient errors."""

from __future__ import annotations

from celery import Task, shared_task

from audit.services import Actor
from authorizers import alerts, reconciliation, services, ticket_watch, tokens
from authorizers.platforms import platforms_active
from wechat.errors import Transient, WeChatError
from wechat.retry import Backoff

# Countdowns of the retries below (n-th retry after n failures): 2 s, 4 s, … up to the cap.
AUTHORIZATION_EVENT_BACKOFF = Backoff(base_seconds=2, cap_seconds=120, jitter=0)
INFO_REFRESH_BACKOFF = Backoff(base_seconds=2, cap_seconds=120, jitter=1)
TOKEN_REFRESH_BACKOFF = Backoff(base_seconds=2, cap_seconds=600, jitter=1)
# The nightly reconciliation retries a transient failure after up to 30 s, 60 s, … 10 min.
RECONCILE_BACKOFF = Backoff(base_seconds=30, cap_seconds=600, jitter=0.5)


@shared_task(bind=True, acks_late=True, max_retries=8)
def process_authorization_event(self: Task[[int], None], event_id: int) -> None:
    try:
        services.component_event_process(event_id=event_id)
    except Transient as exc:  # NoVerifyTicket included: the next push brings a ticket
        if self.request.retries >= (self.max_retries or 0):
            services.component_event_fail(event_id=event_id, error=f"retries exhausted: {exc}")
            return
        raise self.retry(countdown=AUTHORIZATION_EVENT_BACKOFF.delay(self.request.retries + 1)) from exc
    except WeChatError as exc:
        # A definitive refusal (e.g. 61009 code invalid): record it; the callback may still succeed.
        services.component_event_fail(event_id=event_id, error=str(exc))


@shared_task(bind=True, acks_late=True, max_retries=5)
def refresh_authorizer_info(self: Task[[int], None], authorizer_id: int) -> None:
    try:
        services.authorizer_info_refresh(authorizer_id=authorizer_id, actor=Actor.system("permissions re-read"))
    except Transient as exc:
        raise self.retry(exc=exc, countdown=INFO_REFRESH_BACKOFF.delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def refresh_expiring_tokens() -> None:
    """Refresh every active merchant's token before it expires, so no deletion waits on a refresh."""
    blocked = alerts.platforms_blocked()
    for platform in platforms_active():
        if platform.component_appid in blocked:
            # 61004 holds everything of that platform: one cheap component call every run tells when
            # the whitelist is fixed (a success clears the alert and its held deletions resume).
            tokens.platform_probe(platform)
    for authorizer_id in tokens.authorizers_needing_refresh():
        refresh_authorizer_token.delay(authorizer_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=3)
def refresh_authorizer_token(self: Task[[int], None], authorizer_id: int) -> None:
    try:
        tokens.authorizer_token_get(authorizer_id=authorizer_id)
    except tokens.AuthorizerInactive:
        pass  # recorded by the refresh itself
    except Transient as exc:
        raise self.retry(exc=exc, countdown=TOKEN_REFRESH_BACKOFF.delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def reread_merchants() -> None:
    """Every PACED_TICK_SECONDS: a slice of the active merchants' info re-read (each once per
    MERCHANT_REREAD_SECONDS)."""
    reconciliation.merchants_reread_tick()


@shared_task(bind=True, ignore_result=True, max_retries=5)
def reconcile_merchants(self: Task[[], None]) -> None:
    """Nightly: our merchants reconciled with api_get_authorizer_list."""
    try:
        reconciliation.platforms_reconcile(actor=Actor.schedule("nightly reconciliation"))
    except Transient as exc:
        raise self.retry(exc=exc, countdown=RECONCILE_BACKOFF.delay(self.request.retries + 1)) from exc


@shared_task(ignore_result=True)
def watch_verify_ticket() -> None:
    ticket_watch.verify_tickets_watch()
