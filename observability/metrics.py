"""Prometheus metrics: counters and histograms recorded where things happen, gauges read at scrape.

The web and the workers are separate processes (and may be separate machines), so:
- what is a *state* (deletions by status and reason, the queue, the verify ticket's age, token
  health) is computed from the database when Prometheus scrapes: correct whichever process answers,
  a few indexed COUNT queries per scrape;
- what is an *event* (each WeChat call with its errcode and latency, each token refresh) is counted
  in the process that saw it, with prometheus-client's multiprocess mode when
  PROMETHEUS_MULTIPROC_DIR is set (one directory shared by the web and the workers of a host;
  docker-compose.yml mounts one volume into both). Without it each process counts only itself.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    from prometheus_client import values

    # Files are named by process; containers sharing the directory (docker-compose's web and worker)
    # each have a PID 1, so the host name is part of the name.
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: f"{socket.gethostname()}-{os.getpid()}")

WECHAT_CALLS = Counter(
    "kfplatform_wechat_calls_total",
    "Calls to the WeChat API by endpoint, errcode (0: ok; 'none': no errcode, see outcome) and platform",
    ["endpoint", "errcode", "outcome", "platform"],
)
WECHAT_LATENCY = Histogram(
    "kfplatform_wechat_call_seconds",
    "Latency of WeChat API calls, whatever their outcome",
    ["endpoint", "platform"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TOKEN_REFRESHES = Counter(
    "kfplatform_token_refreshes_total",
    "Token refresh calls to WeChat (component and authorizer tokens) by outcome and platform",
    ["kind", "outcome", "platform"],
)

_TOKEN_ENDPOINTS = {
    "/cgi-bin/component/api_component_token": "component",
    "/cgi-bin/component/api_authorizer_token": "authorizer",
}


def observe_wechat_call(path: str, errcode: int | None, outcome: str, seconds: float, *, platform: str = "") -> None:
    """The WeChat client's observer (WECHAT_CALL_OBSERVER): one call, after it ended; ``platform`` is
    the component appid of the client that made it (authorizers/client.py)."""
    code = "none" if errcode is None else str(errcode)
    WECHAT_CALLS.labels(endpoint=path, errcode=code, outcome=outcome, platform=platform).inc()
    WECHAT_LATENCY.labels(endpoint=path, platform=platform).observe(seconds)
    kind = _TOKEN_ENDPOINTS.get(path)
    if kind is not None:
        TOKEN_REFRESHES.labels(kind=kind, outcome=outcome, platform=platform).inc()


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time (the rows are the truth)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from authorizers.models import Authorizer, AuthorizerStatus, ComponentCredential
        from authorizers.platforms import platforms_active
        from kfaccounts.models import DeletionRequest, DeletionStatus

        now = timezone.now()
        by_state = GaugeMetricFamily(
            "kfplatform_deletions", "Deletion requests by status and reason", labels=["status", "reason"]
        )
        for row in DeletionRequest.objects.order_by().values("status", "reason").annotate(n=Count("id")):
            by_state.add_metric([row["status"], row["reason"] or "none"], row["n"])
        yield by_state

        active = DeletionRequest.objects.filter(status__in=[DeletionStatus.PENDING, DeletionStatus.RUNNING])
        counts = active.aggregate(
            due=Count("id", filter=DeletionRequest.objects.due_q(now)),
            scheduled=Count("id", filter=DeletionRequest.objects.scheduled_q(now)),
            running=Count("id", filter=Q(status=DeletionStatus.RUNNING)),
        )
        depth = GaugeMetricFamily(
            "kfplatform_deletion_queue_depth",
            "Deletions not finished: due now, waiting for a scheduled retry, running",
            labels=["state"],
        )
        for state in ("due", "scheduled", "running"):
            depth.add_metric([state], counts[state] or 0)
        yield depth

        oldest = active.order_by("created_at").values_list("created_at", flat=True).first()
        age = GaugeMetricFamily(
            "kfplatform_deletion_oldest_active_seconds", "Age of the oldest deletion not finished (0: none)"
        )
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield age

        broker = _broker_queue_length()
        if broker is not None:
            queue = GaugeMetricFamily("kfplatform_broker_queue_length", "Messages waiting in the Celery queue")
            queue.add_metric([], broker)
            yield queue

        ticket = GaugeMetricFamily(
            "kfplatform_verify_ticket_age_seconds",
            "Seconds since each platform's last component_verify_ticket arrived (WeChat pushes one every 10 min; "
            "-1: none yet)",
            labels=["platform"],
        )
        received_at = dict(ComponentCredential.objects.values_list("component_appid", "ticket_received_at"))
        for platform in platforms_active():
            received = received_at.get(platform.component_appid)
            ticket.add_metric([platform.component_appid], (now - received).total_seconds() if received else -1.0)
        yield ticket

        tokens = GaugeMetricFamily(
            "kfplatform_authorizer_tokens",
            "Active authorizers by the state of their access token, per platform",
            labels=["platform", "state"],
        )
        token_counts = (
            Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE)
            .order_by()
            .values("platform__component_appid")
            .annotate(
                valid=Count("id", filter=Q(access_token_expires_at__gt=now)),
                expired=Count("id", filter=Q(access_token_expires_at__lte=now)),
                none=Count("id", filter=Q(access_token_expires_at__isnull=True)),
            )
        )
        for row in token_counts:
            for state in ("valid", "expired", "none"):
                tokens.add_metric([row["platform__component_appid"], state], row[state] or 0)
        yield tokens


def _broker_queue_length() -> int | None:
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            length: int = client.llen("celery")  # type: ignore[assignment]  # the sync client answers an int
            return length
        finally:
            client.close()
    except redis.RedisError:
        return None


_DATABASE = DatabaseCollector()


def render() -> bytes:
    """The exposition text: this host's processes' counters (or this process's) and the gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (WECHAT_CALLS, WECHAT_LATENCY, TOKEN_REFRESHES):
            registry.register(collector)
    registry.register(_DATABASE)
    return generate_latest(registry)
