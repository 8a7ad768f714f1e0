"""The periodic kf-list re-sync (beat's `resync-kf-accounts`): every eligible merchant's mirror
re-read from WeChat, through the de-duplicating sync request (a sync already queued is joined)."""

from __future__ import annotations

from audit.services import Actor
from authorizers.models import Authorizer, AuthorizerStatus
from authorizers.policy import eligibility
from kfaccounts.services import kf_accounts_sync_request


def kf_accounts_resync_all() -> int:
    """Ask for every eligible merchant's kf list to be re-read; returns how many were asked for."""
    actor = Actor.schedule("periodic kf re-sync")
    count = 0
    for authorizer in Authorizer.objects.filter(status=AuthorizerStatus.ACTIVE):
        if eligibility(authorizer).eligible:
            kf_accounts_sync_request(authorizer=authorizer, actor=actor)
            count += 1
    return count
