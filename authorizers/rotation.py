"""Re-encrypting stored secrets under the primary key of FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from django.db import transaction

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers import fieldcrypto
from authorizers.models import Authorizer, ComponentCredential, ComponentEvent, Platform
from authorizers.platforms import platform_ctx
from authorizers.tokens import authorizer_ctx, component_ctx, event_code_ctx

# (model, field, context of one row): the contexts the values were encrypted with.
_FIELDS = (
    (Platform, "appsecret_ciphertext", lambda row: platform_ctx(row.component_appid, "appsecret")),
    (Platform, "token_ciphertext", lambda row: platform_ctx(row.component_appid, "token")),
    (Platform, "aes_key_ciphertext", lambda row: platform_ctx(row.component_appid, "aes_key")),
    (Platform, "previous_aes_key_ciphertext", lambda row: platform_ctx(row.component_appid, "previous_aes_key")),
    (ComponentCredential, "verify_ticket_ciphertext", lambda row: component_ctx(row.component_appid, "verify_ticket")),
    (ComponentCredential, "access_token_ciphertext", lambda row: component_ctx(row.component_appid, "access_token")),
    (Authorizer, "refresh_token_ciphertext", lambda row: authorizer_ctx(row.appid, "refresh_token", row.platform)),
    (Authorizer, "access_token_ciphertext", lambda row: authorizer_ctx(row.appid, "access_token", row.platform)),
    (
        ComponentEvent,
        "authorization_code_ciphertext",
        lambda row: event_code_ctx(row.info_type, row.authorizer_appid, row.platform),
    ),
)


def encryption_keys_rotate(*, batch_size: int = 500) -> dict[str, int]:
    counts: dict[str, int] = {}
    for model, field, context_of in _FIELDS:
        label = f"{model._meta.label}.{field}"
        counts[label] = 0
        ids = list(model.objects.exclude(**{field: ""}).values_list("pk", flat=True))
        for start in range(0, len(ids), batch_size):
            with transaction.atomic():
                rows = model.objects.select_for_update(of=("self",)).filter(pk__in=ids[start : start + batch_size])
                if any(f.name == "platform" for f in model._meta.fields):
                    rows = rows.select_related("platform")  # type: ignore[misc]  # contexts name it: a join, not a query a row
                for row in rows:
                    stored = getattr(row, field)
                    if not stored or not fieldcrypto.needs_rotation(stored):
                        continue
                    context = context_of(row)
                    setattr(
                        row, field, fieldcrypto.encrypt(fieldcrypto.decrypt(stored, context=context), context=context)
                    )
                    row.save(update_fields=[field])
                    counts[label] += 1
    audit_record(
        actor=Actor.system("rotate_encryption_keys"),
        action=AuditAction.ENCRYPTION_ROTATED,
        outcome="ok",
        detail={"counts": counts, "primary_kid": fieldcrypto.keyring().primary_kid},
    )
    return counts
