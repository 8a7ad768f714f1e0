"""Every write about kf accounts and their deletions, one module per job.

- ``requests``: asking for deletions (validation, policy, idempotency, the outbox rows);
- ``execution``: running a merchant's due deletions in one batch;
- ``callpool``: the batch's kfaccount/del calls, concurrent and paced, with one token refresh;
- ``transitions``: a claimed deletion's way out of ``running`` (finish, retry later, hold, defer);
- ``interventions``: staff cancel and retry, and the cancels of a merchant's deactivation;
- ``sweeper``: recovering expired leases and lost messages;
- ``sync``: the kf-account mirror and the de-duplicated sync request.

Callers import the names below from ``kfaccounts.services``.
"""

from kfaccounts.services.execution import Batch, deletion_batch_execute
from kfaccounts.services.interventions import (
    CANCELLED_BY_STAFF,
    DeletionNotCancellable,
    DeletionNotRetryable,
    deletion_cancel,
    deletion_retry,
)
from kfaccounts.services.requests import IdempotencyConflict, TooManyPending, deletions_for, deletions_request
from kfaccounts.services.sweeper import SweepResult, deletions_resume_held, deletions_sweep
from kfaccounts.services.sync import (
    SYNC_BACKOFF,
    SYNC_QUEUED_STALE_AFTER,
    SyncResult,
    kf_accounts_sync,
    kf_accounts_sync_request,
    kf_accounts_sync_request_many,
    kf_accounts_sync_started,
)
from kfaccounts.services.transitions import (
    PLATFORM_HOLD_RECHECK,
    QUOTA_TIMEZONE,
    RetryPolicy,
    next_quota_reset,
)

__all__ = [
    "CANCELLED_BY_STAFF",
    "PLATFORM_HOLD_RECHECK",
    "QUOTA_TIMEZONE",
    "SYNC_BACKOFF",
    "SYNC_QUEUED_STALE_AFTER",
    "Batch",
    "DeletionNotCancellable",
    "DeletionNotRetryable",
    "IdempotencyConflict",
    "RetryPolicy",
    "SweepResult",
    "SyncResult",
    "TooManyPending",
    "deletion_batch_execute",
    "deletion_cancel",
    "deletion_retry",
    "deletions_for",
    "deletions_request",
    "deletions_resume_held",
    "deletions_sweep",
    "kf_accounts_sync",
    "kf_accounts_sync_request",
    "kf_accounts_sync_request_many",
    "kf_accounts_sync_started",
    "next_quota_reset",
]
