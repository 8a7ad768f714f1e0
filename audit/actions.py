"""The audit log's vocabulary: every action an AuditEvent may record, named ``<entity>.<what happened>``.

One naming scheme: the entity in the singular, snake_case (``deletion``, ``cleanup_run``,
``authorizer``, ``kf_list``, ``alert``…), a dot, then what happened to it, in the past tense or as
the state it reached (``deletion.succeeded``, ``cleanup_run.awaiting_approval``). Calls made to
WeChat are the entity ``wechat`` with the API called (``wechat.kf_delete_called``). Services pass a
member of ``AuditAction``; ``audit.services`` refuses anything else, so a new action is added here
first. Actions renamed when the vocabulary was introduced are in ``RENAMED`` (migration 0004
rewrote the stored lines).
"""

from __future__ import annotations

import re

from django.db import models

# <entity>.<what happened>: one dot, snake_case on both sides.
NAME = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")


class AuditAction(models.TextChoices):
    # merchants (authorizers/)
    AUTHORIZER_AUTHORIZED = "authorizer.authorized"
    AUTHORIZER_UNAUTHORIZED = "authorizer.unauthorized"
    AUTHORIZER_REVOKED = "authorizer.revoked"
    AUTHORIZER_DEACTIVATED = "authorizer.deactivated"
    AUTHORIZER_RESTORED = "authorizer.restored"
    AUTHORIZER_RECONCILED = "authorizer.reconciled"
    AUTHORIZER_INFO_REFRESHED = "authorizer.info_refreshed"
    AUTHORIZER_TOKEN_REFRESH_REQUESTED = "authorizer.token_refresh_requested"
    AUTHORIZER_REFRESH_TOKEN_RECOVERED = "authorizer.refresh_token_recovered"
    AUTHORIZER_REFRESH_TOKEN_RECOVERY_FAILED = "authorizer.refresh_token_recovery_failed"
    AUTHORIZER_RATE_LIMIT_SET = "authorizer.rate_limit_set"
    AUTHORIZER_RATE_LIMIT_LEARNED = "authorizer.rate_limit_learned"
    AUTHORIZER_QUOTA_READ = "authorizer.quota_read"
    AUTHORIZER_QUOTA_PAUSED = "authorizer.quota_paused"
    API_KEY_ISSUED = "api_key.issued"
    API_KEY_REVOKED = "api_key.revoked"
    ENCRYPTION_ROTATED = "encryption.rotated"
    # platforms (authorizers/platforms.py)
    PLATFORM_ADDED = "platform.added"
    PLATFORM_UPDATED = "platform.updated"
    PLATFORM_KEY_ROTATED = "platform.key_rotated"
    PLATFORM_RETIRED = "platform.retired"
    ALERT_RAISED = "alert.raised"
    ALERT_CLEARED = "alert.cleared"
    # calls to WeChat
    WECHAT_COMPONENT_TOKEN_CALLED = "wechat.component_token_called"
    WECHAT_START_PUSH_TICKET_CALLED = "wechat.start_push_ticket_called"
    WECHAT_AUTHORIZER_TOKEN_CALLED = "wechat.authorizer_token_called"
    WECHAT_KF_LIST_CALLED = "wechat.kf_list_called"
    WECHAT_KF_DELETE_CALLED = "wechat.kf_delete_called"
    # kf accounts and deletions (kfaccounts/)
    KF_LIST_SYNCED = "kf_list.synced"
    KF_LIST_SYNC_REFUSED = "kf_list.sync_refused"
    DELETION_REQUESTED = "deletion.requested"
    DELETION_REFUSED = "deletion.refused"
    DELETION_SUCCEEDED = "deletion.succeeded"
    DELETION_FAILED = "deletion.failed"
    DELETION_REJECTED = "deletion.rejected"
    DELETION_CANCELLED = "deletion.cancelled"
    DELETION_DEFERRED = "deletion.deferred"
    DELETION_HELD = "deletion.held"
    DELETION_RETRY_SCHEDULED = "deletion.retry_scheduled"
    DELETION_LEASE_EXPIRED = "deletion.lease_expired"
    DELETION_RETRY_REQUESTED = "deletion.retry_requested"
    DELETION_RETRY_REFUSED = "deletion.retry_refused"
    # webhooks
    WEBHOOK_REGISTERED = "webhook.registered"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_DELIVERY_FAILED = "webhook.delivery_failed"
    WEBHOOK_DELIVERY_RETRIED = "webhook.delivery_retried"
    # scheduled cleanup
    CLEANUP_RULE_CREATED = "cleanup_rule.created"
    CLEANUP_RULE_UPDATED = "cleanup_rule.updated"
    CLEANUP_RULE_ARCHIVED = "cleanup_rule.archived"
    CLEANUP_RULE_LIST_UPDATED = "cleanup_rule.list_updated"
    CLEANUP_RULE_LIMITS_RAISED = "cleanup_rule.limits_raised"
    CLEANUP_RUN_REQUESTED = "cleanup_run.requested"
    CLEANUP_RUN_PREVIEWED = "cleanup_run.previewed"
    CLEANUP_RUN_AWAITING_APPROVAL = "cleanup_run.awaiting_approval"
    CLEANUP_RUN_APPROVED = "cleanup_run.approved"
    CLEANUP_RUN_DECLINED = "cleanup_run.declined"
    CLEANUP_RUN_EXECUTING = "cleanup_run.executing"
    CLEANUP_RUN_FINISHED = "cleanup_run.finished"
    CLEANUP_RUN_REFUSED = "cleanup_run.refused"
    CLEANUP_RUN_FAILED = "cleanup_run.failed"
    # staff accounts (console/staff.py)
    STAFF_CREATED = "staff.created"
    STAFF_ROLE_CHANGED = "staff.role_changed"
    STAFF_UNLOCKED = "staff.unlocked"
    # the audit log itself
    AUDIT_PRUNED = "audit.pruned"


# Stored names before the vocabulary → their name in it (audit/migrations/0004 rewrote them).
RENAMED: dict[str, AuditAction] = {
    "authorizers.reconciled": AuditAction.AUTHORIZER_RECONCILED,
    "platform.alert_raised": AuditAction.ALERT_RAISED,
    "platform.alert_cleared": AuditAction.ALERT_CLEARED,
    "wechat.api_component_token": AuditAction.WECHAT_COMPONENT_TOKEN_CALLED,
    "wechat.api_start_push_ticket": AuditAction.WECHAT_START_PUSH_TICKET_CALLED,
    "wechat.api_authorizer_token": AuditAction.WECHAT_AUTHORIZER_TOKEN_CALLED,
    "wechat.getkflist": AuditAction.WECHAT_KF_LIST_CALLED,
    "wechat.kfaccount.del": AuditAction.WECHAT_KF_DELETE_CALLED,
    "kf_accounts.synced": AuditAction.KF_LIST_SYNCED,
    "kf_accounts.sync_refused": AuditAction.KF_LIST_SYNC_REFUSED,
}
