"""Staff stop serving a merchant: the one deactivation service, beside the policy it changes.

Deactivating forgets the merchant's tokens, revokes its API keys and has every app above withdraw
the merchant's waiting work, in one transaction. The apps above (kfaccounts cancels pending
deletions) are not imported here (the import layers forbid it): they connect a receiver to
``authorizer_deactivating`` in their ``AppConfig.ready`` and return how many rows they withdrew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import django.dispatch
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.api_keys import api_key_revoke
from authorizers.models import ApiKey, Authorizer, AuthorizerStatus

# Sent inside the deactivation's transaction with ``authorizer`` and ``actor``; each receiver returns
# the ids of what it withdrew (a list), which the audit event of the deactivation names.
authorizer_deactivating = django.dispatch.Signal()


@dataclass(frozen=True, slots=True)
class DeactivationResult:
    changed: bool
    api_keys_revoked: int
    deletions_cancelled: int


def authorizer_deactivate(*, authorizer: Authorizer, actor: Actor) -> DeactivationResult:
    """Stop serving a merchant without erasing anything (the console has no "delete merchant").

    Its tokens are forgotten, its API keys revoked and its pending deletions cancelled; running ones
    finish. Its kf accounts, deletions and audit trail stay. Authorizing again makes it active.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Authorizer.objects.filter(pk=authorizer.pk)
            .exclude(status=AuthorizerStatus.DEACTIVATED)
            .update(
                status=AuthorizerStatus.DEACTIVATED,
                refresh_token_ciphertext="",
                access_token_ciphertext="",
                access_token_expires_at=None,
                updated_at=now,
            )
        )
        keys = list(ApiKey.objects.filter(authorizer=authorizer, revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(api_key=key, actor=actor)
        key_prefixes = [key.prefix for key in keys]
        cancelled_ids: list[int] = []
        for _receiver, withdrawn in authorizer_deactivating.send(sender=Authorizer, authorizer=authorizer, actor=actor):
            cancelled_ids += cast(list[int], withdrawn)
        audit_record(
            actor=actor,
            action=AuditAction.AUTHORIZER_DEACTIVATED,
            authorizer_appid=authorizer.appid,
            outcome="deactivated" if changed else "already_deactivated",
            detail={"api_keys_revoked": key_prefixes, "deletions_cancelled": cancelled_ids},
        )
    authorizer.refresh_from_db()
    return DeactivationResult(
        changed=bool(changed), api_keys_revoked=len(key_prefixes), deletions_cancelled=len(cancelled_ids)
    )
