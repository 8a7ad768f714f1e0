"""Every write about cleanup rules and their runs, by job: rules.py (rules and their dated lists),
schedules.py (each rule's beat entry), runs.py (start, execute, finish, sweep), approval.py (an
operator's decision on a run over its limit). The public names are re-exported here."""

from cleanup.models import MAX_LIMIT_ACCOUNTS
from cleanup.services.approval import RunNotDecidable, cleanup_run_approve, cleanup_run_decline
from cleanup.services.rules import (
    MAX_LISTED,
    RULE_FIELDS,
    InvalidRule,
    Listed,
    cleanup_listed_accounts_set,
    cleanup_rule_archive,
    cleanup_rule_create,
    cleanup_rule_update,
    listed_entries_check,
    listed_entries_from_csv,
    rule_actor,
    rule_check,
)
from cleanup.services.runs import (
    EVENT_ITEMS_MAX,
    RUN_LEASE,
    MatchBudgetExceeded,
    Next,
    RunAlreadyOpen,
    cleanup_rule_fire,
    cleanup_run_execute,
    cleanup_run_request,
    cleanup_runs_finish,
    cleanup_runs_sweep,
    criteria_for,
    match_work,
    run_event_data,
)
from cleanup.services.schedules import FIRE_TASK

__all__ = [
    "EVENT_ITEMS_MAX",
    "FIRE_TASK",
    "MAX_LIMIT_ACCOUNTS",
    "MAX_LISTED",
    "RULE_FIELDS",
    "RUN_LEASE",
    "InvalidRule",
    "Listed",
    "MatchBudgetExceeded",
    "Next",
    "RunAlreadyOpen",
    "RunNotDecidable",
    "cleanup_listed_accounts_set",
    "cleanup_rule_archive",
    "cleanup_rule_create",
    "cleanup_rule_fire",
    "cleanup_rule_update",
    "cleanup_run_approve",
    "cleanup_run_decline",
    "cleanup_run_execute",
    "cleanup_run_request",
    "cleanup_runs_finish",
    "cleanup_runs_sweep",
    "criteria_for",
    "listed_entries_check",
    "listed_entries_from_csv",
    "match_work",
    "rule_actor",
    "rule_check",
    "run_event_data",
]
