"""Merchants, the platform's credentials and the pushes WeChat sent (API keys: api_keys.py).

Ciphertext and digests are never shown (excluded from every form and list); token health is shown
instead. Merchants are never deleted here: deactivate them.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction
from audit.models import AuditEvent
from authorizers import authorization
from authorizers import services as authorizer_services
from authorizers.api_keys import api_key_issue
from authorizers.deactivation import authorizer_deactivate
from authorizers.models import (
    ApiKey,
    Authorizer,
    AuthorizerQuerySet,
    AuthorizerStatus,
    ComponentCredential,
    ComponentEvent,
)
from authorizers.platforms import platforms_active
from authorizers.policy import NotEligible, eligibility
from authorizers.tokens import AuthorizerInactive
from console.admin.api_keys import issue_key_consequences
from console.admin.base import ObjectActionsAdmin
from console.admin.bigtables import BigTableAdmin
from console.admin.confirm import Consequences, Target, confirmed
from console.admin.helpers import (
    ByPlatformAdmin,
    ReadOnlyAdmin,
    admin_link,
    admin_url,
    changelist_link,
    console_action,
    holds,
    inline_table,
    local_time,
    merchant_name,
    reason_with_hint,
    staff_actor,
)
from errorkit import DomainError
from kfaccounts import services as kf_services
from kfaccounts.models import DeletionRequest, DeletionStatus, KfAccount
from wechat.errors import WeChatError

RECENT = 10


def wechat_reason(exc: Exception) -> str:
    """A failed action in the staff's language: WeChat's errcode, or the domain error's code (the
    same codes the API answers) shown as words."""
    if isinstance(exc, WeChatError) and exc.errcode is None:
        return gettext("no usable answer from WeChat (%(reason)s)") % {"reason": exc.errmsg or exc.reason}
    if isinstance(exc, WeChatError):
        return gettext("WeChat answered errcode %(errcode)s (%(errmsg)s)") % {
            "errcode": exc.errcode,
            "errmsg": exc.errmsg or exc.reason,
        }
    if isinstance(exc, DomainError):
        if exc.code == AuthorizerInactive.code:
            return gettext("the merchant is not active (revoked or deactivated)")
        if isinstance(exc, NotEligible):
            return gettext("not eligible: %(why)s") % {"why": exc.verdict.summary_text}
        return exc.message
    return str(exc)


class EligibilityFilter(admin.SimpleListFilter):
    title = _("eligibility")
    parameter_name = "eligible"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("eligible")), ("no", _("not eligible"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() not in ("yes", "no"):
            return None
        # In SQL (Authorizer.objects.eligible): no merchant is loaded to be judged in Python.
        authorizers = cast(AuthorizerQuerySet, queryset)
        return authorizers.eligible() if self.value() == "yes" else authorizers.not_eligible()


class QuotaPausedFilter(admin.SimpleListFilter):
    title = _("quota")
    parameter_name = "quota"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("paused", _("paused for quota"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == "paused":
            return queryset.filter(quota_paused_until__gt=timezone.now())
        return None


def deactivate_consequences(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> Consequences:
    targets, skipped = [], []
    keys_total = pending_total = 0
    for authorizer in queryset:
        if authorizer.status == AuthorizerStatus.DEACTIVATED:
            skipped.append((merchant_name(authorizer), gettext("already deactivated")))
            continue
        keys = ApiKey.objects.filter(authorizer=authorizer, revoked_at__isnull=True).count()
        pending = DeletionRequest.objects.filter(authorizer=authorizer, status=DeletionStatus.PENDING).count()
        running = DeletionRequest.objects.filter(authorizer=authorizer, status=DeletionStatus.RUNNING).count()
        keys_total, pending_total = keys_total + keys, pending_total + pending
        effects = [
            ngettext(
                "%(n)d API key revoked: the merchant's systems are refused from now on",
                "%(n)d API keys revoked: the merchant's systems are refused from now on",
                keys,
            )
            % {"n": keys},
            ngettext(
                "%(n)d pending deletion cancelled (its kf account stays on WeChat)",
                "%(n)d pending deletions cancelled (their kf accounts stay on WeChat)",
                pending,
            )
            % {"n": pending},
            gettext("its WeChat tokens are forgotten: nothing more is done on its behalf"),
        ]
        if running:
            effects.append(
                ngettext(
                    "%(n)d deletion running now finishes",
                    "%(n)d deletions running now finish",
                    running,
                )
                % {"n": running}
            )
        targets.append(Target(label=merchant_name(authorizer), effects=effects, url=admin_url(authorizer)))
    count = len(targets)
    return Consequences(
        title=gettext("Deactivate merchants?"),
        summary=ngettext("%(n)d merchant will be deactivated.", "%(n)d merchants will be deactivated.", count)
        % {"n": count},
        totals=[
            ngettext("%(n)d API key revoked", "%(n)d API keys revoked", keys_total) % {"n": keys_total},
            ngettext("%(n)d pending deletion cancelled", "%(n)d pending deletions cancelled", pending_total)
            % {"n": pending_total},
        ]
        if count
        else [],
        targets=targets,
        skipped=skipped,
        undo=gettext(
            "Not from this console. Only the merchant can make itself active again, by authorizing the platform "
            "again on WeChat (send it the authorization link). Revoked API keys stay revoked: issue new ones "
            "then. Cancelled deletions must be asked for again. Its kf accounts, deletions and audit trail stay."
        ),
        confirm_label=ngettext("Yes, deactivate %(n)d merchant", "Yes, deactivate %(n)d merchants", count)
        % {"n": count},
    )


@admin.register(Authorizer)
class AuthorizerAdmin(ByPlatformAdmin, BigTableAdmin, ObjectActionsAdmin):
    platform_path = "platform"
    list_display = ("merchant", "kind", "certified", "granted", "status", "eligible", "token_expires", "quota_pause")
    list_filter = ("status", "kind", EligibilityFilter, QuotaPausedFilter)
    search_fields = ("appid", "nickname", "alias", "principal_name", "user_name")
    list_per_page = 50
    object_actions = ("refresh_token", "reread_permissions", "sync_kf_accounts", "issue_api_key", "deactivate")
    actions = list(object_actions)
    object_action_labels = {
        "refresh_token": _("Refresh token"),
        "reread_permissions": _("Re-read permissions"),
        "sync_kf_accounts": _("Sync kf accounts"),
        "issue_api_key": _("Issue API key…"),
        "deactivate": _("Deactivate…"),
    }

    def object_action_applies(self, name: str, obj: Any) -> bool:
        return obj.status == AuthorizerStatus.ACTIVE

    fieldsets = (
        (
            _("Account"),
            {"fields": ("appid", "nickname", "alias", "user_name", "principal_name", "kind", "certification")},
        ),
        (
            _("Permissions and eligibility"),
            {"fields": ("granted", "eligible", "eligibility_reasons", "reauthorization_link")},
        ),
        (
            _("Status"),
            {"fields": ("status", "authorized_at", "revoked_at", "info_refreshed_at", "quota_paused_until")},
        ),
        (
            _("Token health"),
            {
                "fields": (
                    "access_token_expires_at",
                    "access_token_refreshed_at",
                    "token_refresh_count",
                    "last_token_error",
                )
            },
        ),
        (_("Recent deletions"), {"fields": ("recent_deletions",)}),
        (_("Kf accounts"), {"fields": ("kf_account_table",)}),
        (_("API keys"), {"fields": ("api_key_table",)}),
    )
    readonly_fields = (
        "appid",
        "nickname",
        "alias",
        "user_name",
        "principal_name",
        "kind",
        "certification",
        "granted",
        "eligible",
        "eligibility_reasons",
        "reauthorization_link",
        "status",
        "authorized_at",
        "revoked_at",
        "info_refreshed_at",
        "quota_paused_until",
        "access_token_expires_at",
        "access_token_refreshed_at",
        "token_refresh_count",
        "last_token_error",
        "recent_deletions",
        "kf_account_table",
        "api_key_table",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # merchants arrive through the authorization flow only

    has_operate_permission = holds("authorizers.operate_authorizer")
    has_manage_api_keys_permission = holds("authorizers.manage_apikey")  # superusers: no group holds it

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description=_("merchant"), ordering="nickname")
    def merchant(self, obj: Authorizer) -> str:
        return format_html("{}<br><small>{}</small>", obj.nickname or "—", obj.appid)

    @admin.display(boolean=True, description=_("certified"))
    def certified(self, obj: Authorizer) -> bool:
        return obj.is_certified

    @admin.display(description=_("certification"))
    def certification(self, obj: Authorizer) -> str:
        if obj.verify_type_id is None:
            return gettext("unknown")
        state = gettext("certified") if obj.is_certified else gettext("not certified")
        return f"{state} (verify_type_info.id {obj.verify_type_id})"

    @admin.display(description=_("permission sets"))
    def granted(self, obj: Authorizer) -> str:
        return ", ".join(map(str, obj.func_ids or [])) or "—"

    @admin.display(boolean=True, description=_("eligible"))
    def eligible(self, obj: Authorizer) -> bool:
        return eligibility(obj).eligible

    @admin.display(description=_("why not eligible"))
    def eligibility_reasons(self, obj: Authorizer) -> str:
        verdict = eligibility(obj)
        return verdict.summary_text

    @admin.display(description=_("authorize again"))
    def reauthorization_link(self, obj: Authorizer) -> str:
        url = reverse("admin:authorizers_authorizer_authorization_link") + f"?biz_appid={obj.appid}"
        if not obj.platform.from_environment:
            url += f"&platform={obj.platform.component_appid}"
        return format_html(
            '<a href="{}">{}</a>', url, gettext("a link for this merchant to grant (other) permission sets")
        )

    @admin.display(description=_("token expires"), ordering="access_token_expires_at")
    def token_expires(self, obj: Authorizer) -> str:
        if not obj.access_token_expires_at:
            return gettext("no token")
        if obj.access_token_expires_at <= timezone.now():
            return gettext("expired %(at)s") % {"at": local_time(obj.access_token_expires_at)}
        return local_time(obj.access_token_expires_at)

    @admin.display(description=_("quota paused until"), ordering="quota_paused_until")
    def quota_pause(self, obj: Authorizer) -> str:
        return local_time(obj.quota_paused_until) if obj.quota_paused() else "—"

    @admin.display(description=_("last token error"))
    def last_token_error(self, obj: Authorizer) -> str:
        event = (
            AuditEvent.objects.filter(authorizer_appid=obj.appid, action=AuditAction.WECHAT_AUTHORIZER_TOKEN_CALLED)
            .exclude(outcome="ok")
            .first()
        )
        if event is None:
            return "—"
        return format_html(
            "{} — {} errcode {} {}", admin_link(event, local_time(event.at)), event.outcome, event.errcode, event.errmsg
        )

    @admin.display(description=_("recent deletions"))
    def recent_deletions(self, obj: Authorizer) -> str:
        rows = DeletionRequest.objects.filter(authorizer=obj).order_by("-id")[:RECENT]
        if not rows:
            return "—"
        more = changelist_link(DeletionRequest, gettext("all deletions of this merchant"), authorizer__id__exact=obj.pk)
        return inline_table(
            (
                (
                    admin_link(d, f"#{d.pk}"),
                    d.kf_account,
                    d.get_status_display(),
                    reason_with_hint(d),
                    local_time(d.created_at),
                )
                for d in rows
            ),
            more=more,
        )

    @admin.display(description=_("kf accounts"))
    def kf_account_table(self, obj: Authorizer) -> str:
        rows = KfAccount.objects.filter(authorizer=obj, gone_at__isnull=True)[:RECENT]
        present = KfAccount.objects.filter(authorizer=obj, gone_at__isnull=True).count()
        if not rows:
            return "—"
        more = changelist_link(
            KfAccount, gettext("all %(count)d kf accounts") % {"count": present}, authorizer__id__exact=obj.pk
        )
        return inline_table(
            (
                (admin_link(k, k.kf_account), k.kf_nick, k.kf_wx or k.invite_status or "—", local_time(k.last_seen_at))
                for k in rows
            ),
            more=more,
        )

    @admin.display(description=_("API keys"))
    def api_key_table(self, obj: Authorizer) -> str:
        keys = ApiKey.objects.filter(authorizer=obj)
        if not keys:
            return "—"
        return inline_table(
            (
                admin_link(k, f"kfp_{k.prefix}_…"),
                k.name or "—",
                local_time(k.created_at),
                gettext("revoked %(at)s") % {"at": local_time(k.revoked_at)} if k.revoked_at else gettext("active"),
            )
            for k in keys
        )

    # --- actions ---------------------------------------------------------------------------

    def _each(self, request: HttpRequest, queryset: QuerySet, run: Any, done: Any) -> None:
        for authorizer in queryset:
            try:
                result = run(authorizer)
            except (WeChatError, AuthorizerInactive, NotEligible) as exc:
                self.message_user(request, f"{merchant_name(authorizer)}: {wechat_reason(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"{merchant_name(authorizer)}: {done(result)}", messages.SUCCESS)

    @console_action(description=_("Refresh access token now"), permissions=["operate"])
    def refresh_token(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda a: authorizer_services.authorizer_token_refresh(authorizer=a, actor=staff_actor(request)),
            lambda a: gettext("token refreshed, expires %(at)s") % {"at": local_time(a.access_token_expires_at)},
        )

    @console_action(description=_("Re-read account info and permissions"), permissions=["operate"])
    def reread_permissions(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda a: authorizer_services.authorizer_info_refresh(authorizer_id=a.pk, actor=staff_actor(request)),
            lambda a: gettext("permission sets re-read: %(sets)s") % {"sets": self.granted(a)},
        )

    @console_action(description=_("Sync kf accounts from WeChat"), permissions=["operate"])
    def sync_kf_accounts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda a: kf_services.kf_accounts_sync(authorizer=a, actor=staff_actor(request)),
            lambda r: (
                gettext("kf accounts synced: %(present)d present, %(added)d new, %(gone)d gone")
                % {"present": r.present, "added": r.added, "gone": r.gone}
            ),
        )

    @console_action(
        description=_("Deactivate (revoke its API keys, cancel pending deletions)…"), permissions=["operate"]
    )
    @confirmed(consequences=deactivate_consequences, danger=True)
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda a: authorizer_deactivate(authorizer=a, actor=staff_actor(request)),
            lambda r: (
                gettext("deactivated; %(keys)d API keys revoked, %(cancelled)d pending deletions cancelled")
                % {"keys": r.api_keys_revoked, "cancelled": r.deletions_cancelled}
            ),
        )

    @console_action(description=_("Issue an API key (shown once)…"), permissions=["manage_api_keys"])
    @confirmed(consequences=issue_key_consequences)
    def issue_api_key(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        issued = []
        for authorizer in queryset:
            if authorizer.status != AuthorizerStatus.ACTIVE:
                self.message_user(
                    request,
                    f"{merchant_name(authorizer)}: "
                    + gettext("no key issued: the merchant is %(status)s")
                    % {"status": authorizer.get_status_display()},
                    messages.ERROR,
                )
                continue
            api_key, plaintext = api_key_issue(
                authorizer=authorizer, actor=staff_actor(request), name=f"console:{request.user.get_username()}"
            )
            issued.append((authorizer, api_key, plaintext))
        if not issued:
            return None
        response = TemplateResponse(
            request,
            "console/api_key_issued.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("API key issued"),
                "issued": issued,
                "opts": self.model._meta,
            },
        )
        response["Cache-Control"] = "no-store"  # the page holds a key shown once: no copy in any cache
        return response

    # --- the authorization-link page --------------------------------------------------------

    def get_urls(self) -> list[Any]:
        extra = [
            path(
                "authorization-link/",
                self.admin_site.admin_view(self.authorization_link_view),
                name="authorizers_authorizer_authorization_link",
            )
        ]
        return extra + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {"authorization_link_url": reverse("admin:authorizers_authorizer_authorization_link")}
        return super().changelist_view(request, extra_context={**context, **(extra_context or {})})

    change_list_template = "console/authorizer_change_list.html"

    def authorization_link_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        error = link = ""
        # Which platform the merchant is to authorize (issue 19): the default one unless staff pick
        # another; the picker shows only when several are served.
        served = platforms_active()
        platform = next((p for p in served if p.component_appid == request.GET.get("platform")), served[0])
        try:
            choice = authorization.account_choice_parse(
                auth_type=request.GET.get("auth_type"),
                biz_appid=request.GET.get("biz_appid"),
                # A new link offers only the kf permission sets unless staff untick it.
                sets=request.GET.get("sets") or ("all" if "auth_type" in request.GET else "kf"),
            )
        except authorization.BadChoice as exc:
            error, choice = str(exc), authorization.AccountChoice()
        else:
            link = authorization.authorize_page_url(
                base_url=authorization.public_base_url(f"{request.scheme}://{request.get_host()}"),
                choice=choice,
                platform=platform,
            )
        authorizer = Authorizer.objects.filter(appid=choice.biz_appid or "", platform=platform).first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Authorization link"),
            "link": link,
            "error": error,
            "choice": choice,
            "merchant": authorizer,
            "platforms": served if len(served) > 1 else [],
            "platform": platform,
            "auth_types": list(authorization.AUTH_TYPES.items()),
            "kf_category_ids": "|".join(str(i) for i in authorization.KF_CATEGORY_IDS),
        }
        return TemplateResponse(request, "console/authorization_link.html", context, status=400 if error else 200)


@admin.register(ComponentCredential)
class ComponentCredentialAdmin(ReadOnlyAdmin):
    list_display = (
        "component_appid",
        "ticket_received_at",
        "ticket_created_at",
        "access_token_expires_at",
        "refresh_count",
    )
    fields = (
        "component_appid",
        "ticket_created_at",
        "ticket_received_at",
        "access_token_expires_at",
        "access_token_refreshed_at",
        "refresh_count",
    )
    readonly_fields = fields


@admin.register(ComponentEvent)
class ComponentEventAdmin(ByPlatformAdmin, ReadOnlyAdmin):
    platform_path = "platform"
    list_display = ("received_at", "info_type", "authorizer_appid", "create_time", "state")
    list_filter = ("info_type", "state")
    search_fields = ("authorizer_appid",)
    fields = ("info_type", "authorizer_appid", "create_time", "received_at", "state", "processed_at", "error", "fields")
    readonly_fields = fields
