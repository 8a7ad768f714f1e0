"""Stored audit lines take the vocabulary's names (audit/actions.py): one naming scheme,
``<entity>.<what happened>``.

Batched and outside one long transaction: the audit log is the biggest table (millions of lines of
``wechat.kfaccount.del``), and nothing else ever updates its rows, so each batch is short and a
migration interrupted half-way is simply run again.
"""

from __future__ import annotations

from django.db import migrations

# Frozen here: the vocabulary may grow, this migration's job does not change.
RENAMED = {
    "authorizers.reconciled": "authorizer.reconciled",
    "platform.alert_raised": "alert.raised",
    "platform.alert_cleared": "alert.cleared",
    "wechat.api_component_token": "wechat.component_token_called",
    "wechat.api_start_push_ticket": "wechat.start_push_ticket_called",
    "wechat.api_authorizer_token": "wechat.authorizer_token_called",
    "wechat.getkflist": "wechat.kf_list_called",
    "wechat.kfaccount.del": "wechat.kf_delete_called",
    "kf_accounts.synced": "kf_list.synced",
    "kf_accounts.sync_refused": "kf_list.sync_refused",
}
BATCH = 10_000


def _rename(apps, schema_editor, mapping: dict[str, str]) -> None:
    AuditEvent = apps.get_model("audit", "AuditEvent")
    for old, new in mapping.items():
        while True:
            ids = list(AuditEvent.objects.filter(action=old).values_list("id", flat=True)[:BATCH])
            if not ids:
                break
            AuditEvent.objects.filter(id__in=ids).update(action=new)


def forward(apps, schema_editor) -> None:
    _rename(apps, schema_editor, RENAMED)


def backward(apps, schema_editor) -> None:
    _rename(apps, schema_editor, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0003_big_tables")]

    operations = [migrations.RunPython(forward, backward)]
