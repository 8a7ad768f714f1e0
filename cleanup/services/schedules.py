"""A rule's schedule: the django-celery-beat PeriodicTask that fires it, kept in step with the rule."""

from __future__ import annotations

import json
from typing import Any

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from cleanup.models import CleanupRule, ScheduleKind

FIRE_TASK = "cleanup.tasks.fire_cleanup_rule"


def rule_schedule_sync(rule: CleanupRule) -> None:
    """Create or update the rule's django-celery-beat PeriodicTask to match the rule."""
    schedule: dict[str, Any]
    if rule.schedule_kind == ScheduleKind.INTERVAL:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=rule.interval_seconds, period=IntervalSchedule.SECONDS
        )
        schedule = {"interval": interval, "crontab": None}
    else:
        minute, hour, day_of_month, month, day_of_week = rule.crontab.split()
        cron, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
            timezone=rule.timezone,
        )
        schedule = {"crontab": cron, "interval": None}
    enabled = rule.enabled and not rule.is_archived
    task = rule.periodic_task
    if task is None:
        task = PeriodicTask(name=f"cleanup-rule-{rule.pk}", task=FIRE_TASK)
    task.task = FIRE_TASK
    task.args = json.dumps([rule.pk])
    task.enabled = enabled
    task.description = f"Cleanup rule {rule.pk}: {rule.name}"
    for key, value in schedule.items():
        setattr(task, key, value)
    task.save()
    if rule.periodic_task_id != task.pk:
        rule.periodic_task = task
        rule.save(update_fields=["periodic_task"])
