"""Helpers for the cleanup tests: WeChat's kf list at the HTTP edge, rules, and running them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audit.models import ActorKind
from audit.services import Actor
from cleanup import services
from cleanup.models import CleanupRule, CleanupRun
from tests.console.conftest import operator, superuser, viewer  # noqa: F401 (the staff fixtures, shared)
from tests.kfaccounts.conftest import DEL_URL, LIST_URL, OK

# Rules made here are made by staff (who may also raise a blast-radius limit).
STAFF = Actor(kind=ActorKind.STAFF, label="test staff")


@pytest.fixture(autouse=True)
def _fast_deletion_retries(settings) -> None:
    settings.DELETION_RETRY_BASE_SECONDS = 0.0
    settings.DELETION_RETRY_CAP_SECONDS = 0.0


def kf_item(account: str, **fields: Any) -> dict[str, Any]:
    item = {"kf_account": account, "kf_nick": account.split("@")[0], "kf_id": "1001", "kf_headimgurl": ""}
    item.update(fields)
    return item


def serve_kf_list(wechat, *accounts: str | dict[str, Any]) -> None:
    """What getkflist answers from now on (replacing any earlier answer)."""
    wechat.remove("GET", LIST_URL)
    items = [kf_item(a) if isinstance(a, str) else a for a in accounts]
    wechat.get(LIST_URL, json={"kf_list": items})


def serve_deletes(wechat) -> None:
    wechat.post(DEL_URL, json=OK)


@pytest.fixture
def make_rule() -> Callable[..., CleanupRule]:
    def make(authorizer, **values: Any) -> CleanupRule:
        defaults: dict[str, Any] = {
            "name": "test rule",
            "mode": "delete",
            "schedule_kind": "crontab",
            "crontab": "0 3 * * *",
        }
        defaults.update(values)
        return services.cleanup_rule_create(authorizer=authorizer, actor=STAFF, values=defaults)

    return make


@pytest.fixture
def run_rule(django_capture_on_commit_callbacks) -> Callable[..., CleanupRun]:
    """Start one run of the rule and execute it in-process (deletions run eagerly, as a worker would)."""

    def run(rule: CleanupRule, *, dry_run: bool = False, authorizer=None) -> CleanupRun:
        (created,) = services.cleanup_run_request(
            rule=rule, actor=STAFF, dry_run=dry_run, trigger="test", authorizer=authorizer
        )
        return execute(created.pk)

    def execute(run_id: int) -> CleanupRun:
        with django_capture_on_commit_callbacks(execute=True):
            services.cleanup_run_execute(run_id=run_id)
        services.cleanup_runs_finish(run_ids=[run_id])
        return CleanupRun.objects.get(pk=run_id)

    run.execute = execute  # type: ignore[attr-defined]
    return run


def runs_sent(callbacks: list[Callable[[], object]]) -> list[int]:
    """The run ids that on-commit callbacks captured by ``django_capture_on_commit_callbacks`` send."""
    from functools import partial

    from cleanup.tasks import execute_cleanup_run

    return [
        callback.args[0]
        for callback in callbacks
        if isinstance(callback, partial) and callback.func == execute_cleanup_run.delay
    ]
