"""Translatable names for the domain apps' models and fields, as the console shows them.

The domain models name their fields by attribute (``kf_account`` reads "kf account") and know
nothing of languages. The console gives those derived names to gettext at start-up, so the admin
shows them in the staff's language. Only names a model did not set itself are replaced, and only
the display name changes: ``_verbose_name`` and ``Meta.original_attrs`` (what migrations read) are
left alone, so no migration follows from this.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

MODELS: dict[tuple[str, str], tuple[Any, Any]] = {
    ("authorizers", "authorizer"): (_("merchant"), _("merchants")),
    ("authorizers", "apikey"): (_("API key"), _("API keys")),
    ("authorizers", "componentcredential"): (_("platform credential"), _("platform credentials")),
    ("authorizers", "componentevent"): (_("WeChat push"), _("WeChat pushes")),
    ("kfaccounts", "kfaccount"): (_("kf account"), _("kf accounts")),
    ("kfaccounts", "deletionrequest"): (_("deletion"), _("deletions")),
    ("kfaccounts", "idempotencyrecord"): (_("idempotency record"), _("idempotency records")),
    ("audit", "auditevent"): (_("audit event"), _("audit events")),
}
APP_NAMES = {
    "authorizers": _("Merchants"),
    "kfaccounts": _("Kf accounts and deletions"),
    "audit": _("Audit log"),
}
LABELLED_APPS = ("authorizers", "kfaccounts", "audit")

FIELDS: dict[str, Any] = {
    "access_token_expires_at": _("access token expires at"),
    "access_token_refreshed_at": _("access token refreshed at"),
    "account_status": _("account status"),
    "action": _("action"),
    "actor_id": _("actor id"),
    "actor_kind": _("actor kind"),
    "actor_label": _("actor"),
    "alias": _("WeChat id (alias)"),
    "appid": _("appid"),
    "at": _("time"),
    "attempts": _("attempts"),
    "authorized_at": _("authorized at"),
    "authorizer": _("merchant"),
    "authorizer_appid": _("merchant appid"),
    "component_appid": _("component appid"),
    "create_time": _("pushed at (CreateTime)"),
    "created_at": _("created at"),
    "detail": _("detail"),
    "dispatched_at": _("sent to a worker at"),
    "errcode": _("errcode"),
    "errmsg": _("errmsg"),
    "error": _("error"),
    "fields": _("fields"),
    "finished_at": _("finished at"),
    "first_seen_at": _("first seen at"),
    "func_ids": _("permission sets"),
    "gone_at": _("gone at"),
    "info_refreshed_at": _("info re-read at"),
    "info_type": _("info type"),
    "invite_expire_time": _("invitation expires at"),
    "invite_status": _("invite status"),
    "invite_wx": _("invited WeChat id"),
    "kf_account": _("kf account"),
    "kf_id": _("kf id"),
    "kf_nick": _("nickname"),
    "kf_wx": _("bound WeChat id"),
    "kind": _("kind"),
    "last_event_at": _("last push applied at"),
    "last_seen_at": _("last seen at"),
    "last_used_at": _("last used at"),
    "lease_expires_at": _("lease expires at"),
    "name": _("name"),
    "next_attempt_at": _("next attempt at"),
    "nickname": _("nickname"),
    "outcome": _("outcome"),
    "outcome_unknown": _("outcome unknown"),
    "prefix": _("prefix"),
    "principal_name": _("principal name"),
    "processed_at": _("processed at"),
    "quota_paused_until": _("quota paused until"),
    "reason": _("reason"),
    "received_at": _("received at"),
    "refresh_count": _("refresh count"),
    "revoked_at": _("revoked at"),
    "rid": _("rid"),
    "service_type_id": _("service type id"),
    "started_at": _("started at"),
    "state": _("state"),
    "status": _("status"),
    "subject": _("subject"),
    "ticket_created_at": _("ticket created at"),
    "ticket_received_at": _("ticket received at"),
    "token_refresh_count": _("token refreshes"),
    "transient_failures": _("transient failures"),
    "updated_at": _("updated at"),
    "user_name": _("original id"),
    "verify_type_id": _("verify type id"),
}


def apply_labels(apps: Any) -> None:
    for (app_label, model_name), (singular, plural) in MODELS.items():
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue
        if "verbose_name" not in model._meta.original_attrs:
            model._meta.verbose_name = singular
            model._meta.verbose_name_plural = plural
    for app_label, name in APP_NAMES.items():
        try:
            apps.get_app_config(app_label).verbose_name = name
        except LookupError:
            continue
    for app_label in LABELLED_APPS:
        for model in apps.get_app_config(app_label).get_models():
            for field in model._meta.concrete_fields:
                if field._verbose_name is None and field.name in FIELDS:
                    field.verbose_name = FIELDS[field.name]
