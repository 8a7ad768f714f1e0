"""Staff views of cleanup rules and their runs (approval shows the list first).

Every write goes through cleanup.services with the staff user as the actor; every action is a
console_action declaring the permission it needs (operators have `change`, viewers only look).
Nothing here is ever deleted. Templates: console/templates/admin/cleanup/.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cleanup import services
from cleanup.models import (
    CleanupRule,
    CleanupRun,
    InviteStatus,
    ItemAction,
    ListedAccount,
    RunItem,
    RunStatus,
)
from console.admin.helpers import ByPlatformAdmin, console_action, inline_table, merchant_name, staff_actor

MAX_CSV_BYTES = 2 * 1024 * 1024


def _merchant(authorizer: Any) -> str:
    if authorizer is None:
        return str(_("every merchant"))
    return merchant_name(authorizer)


class CleanupRuleForm(forms.ModelForm):
    invite_statuses = forms.MultipleChoiceField(
        choices=InviteStatus.choices, required=False, widget=forms.CheckboxSelectMultiple, label=_("invite statuses")
    )

    class Meta:
        model = CleanupRule
        fields = ["authorizer", *services.RULE_FIELDS]

    # The fields' validators and CleanupRule.clean() check the rule (ModelForm runs full_clean), the
    # same checks the API's serializer and the service make.


class ListedAccountInline(admin.TabularInline):
    model = ListedAccount
    fields = ("kf_account", "delete_on", "note", "added_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    verbose_name_plural = _("accounts listed for deletion on a date (upload a CSV to change)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CleanupRule)
class CleanupRuleAdmin(ByPlatformAdmin):
    form = CleanupRuleForm
    list_display = ("name", "merchant", "mode", "enabled", "schedule", "selectors", "limits", "archived_at")
    list_filter = ("mode", "enabled")
    search_fields = ("name", "authorizer__appid", "authorizer__nickname")
    inlines = [ListedAccountInline]
    actions = ["dry_run_now", "run_now", "archive"]
    change_form_template = "admin/cleanup/cleanuprule/change_form.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = (
            "periodic_task_link",
            "created_by_label",
            "created_at",
            "limits_raised_by",
            "limits_raised_at",
            "archived_at",
        )
        return ("authorizer", *fixed) if obj is not None else fixed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # archive instead: runs keep pointing at their rule

    @admin.display(description=_("merchant"))
    def merchant(self, obj: CleanupRule) -> str:
        return _merchant(obj.authorizer)

    @admin.display(description=_("schedule"))
    def schedule(self, obj: CleanupRule) -> str:
        if obj.schedule_kind == "interval":
            return f"every {obj.interval_seconds} s"
        return f"{obj.crontab} ({obj.timezone})"

    @admin.display(description=_("selects"))
    def selectors(self, obj: CleanupRule) -> str:
        parts = []
        if obj.pattern:
            parts.append(f"{obj.pattern_kind} {obj.pattern}")
        if obj.invite_statuses:
            labels = dict(InviteStatus.choices)
            statuses = "/".join(str(labels.get(s, s)) for s in obj.invite_statuses)
            parts.append(gettext("invitation %(statuses)s") % {"statuses": statuses})
        if obj.unbound_days is not None:
            parts.append(gettext("unbound more than %(days)d days") % {"days": obj.unbound_days})
        if obj.use_list:
            parts.append(gettext("dated list"))
        joiner = gettext(" and ") if obj.combine == "all" else gettext(" or ")
        return joiner.join(parts) or "—"

    @admin.display(description=_("blast-radius limits"))
    def limits(self, obj: CleanupRule) -> str:
        """The limits a run uses, and any override of the platform's defaults (raised by staff, or
        lowered by the merchant) said in so many words."""
        accounts, percent = obj.limits_effective()
        text = gettext("%(accounts)d accounts / %(percent)d%%") % {"accounts": accounts, "percent": percent}
        defaults = (settings.CLEANUP_MAX_ACCOUNTS, settings.CLEANUP_MAX_PERCENT)
        if obj.limits_raised_by and (accounts, percent) != defaults:
            return format_html(
                '<strong data-limits="raised">{}</strong> ({})',
                text,
                gettext("raised by %(who)s") % {"who": obj.limits_raised_by},
            )
        if (accounts, percent) != defaults:
            return format_html('<span data-limits="lowered">{}</span> ({})', text, gettext("lowered"))
        return format_html('<span data-limits="default">{}</span>', gettext("platform default"))

    @admin.display(description=_("periodic task"))
    def periodic_task_link(self, obj: CleanupRule) -> str:
        if obj.periodic_task_id is None:
            return "—"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[obj.periodic_task_id])
        return format_html('<a href="{}">{}</a>', url, obj.periodic_task)

    def save_model(self, request: HttpRequest, obj: CleanupRule, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        values = {name: getattr(form.instance, name) for name in services.RULE_FIELDS}
        if change:
            rule = services.cleanup_rule_update(rule=CleanupRule.objects.get(pk=obj.pk), actor=actor, values=values)
        else:
            rule = services.cleanup_rule_create(
                authorizer=form.cleaned_data.get("authorizer"), actor=actor, values=values
            )
        obj.pk = rule.pk
        obj.refresh_from_db()

    def _start(self, request: HttpRequest, queryset: Any, *, dry_run: bool) -> None:
        for rule in queryset:
            try:
                runs = services.cleanup_run_request(
                    rule=rule, actor=staff_actor(request), dry_run=dry_run, trigger="admin"
                )
            except services.InvalidRule as exc:
                self.message_user(request, f"{rule} ({_merchant(rule.authorizer)}): {exc}", messages.ERROR)
            except services.RunAlreadyOpen:
                # Answered 500 from the list before: one open run per rule and merchant is the rule.
                self.message_user(
                    request,
                    gettext("%(rule)s: a run of it is still open; wait for it to end") % {"rule": rule},
                    messages.WARNING,
                )
            else:
                what = _("dry run") if dry_run else _("run")
                self.message_user(
                    request,
                    gettext("%(rule)s: %(what)s started for %(count)d merchant(s); see Cleanup runs")
                    % {"rule": rule, "what": what, "count": len(runs)},
                )

    @console_action(description=_("Dry run now (preview, deletes nothing)"), permissions=["change"])
    def dry_run_now(self, request: HttpRequest, queryset: Any) -> None:
        self._start(request, queryset, dry_run=True)

    @console_action(description=_("Run now (delete-mode rules; limits apply)"), permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: Any) -> None:
        self._start(request, queryset, dry_run=False)

    @console_action(description=_("Archive (stop and hide; runs stay)"), permissions=["change"])
    def archive(self, request: HttpRequest, queryset: Any) -> None:
        for rule in queryset:
            services.cleanup_rule_archive(rule=rule, actor=staff_actor(request))
        self.message_user(request, _("archived"))

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/upload-list/",
                self.admin_site.admin_view(self.upload_list_view),
                name="cleanup_cleanuprule_upload_list",
            ),
            path(
                "<path:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="cleanup_cleanuprule_dry_run",
            ),
            *super().get_urls(),
        ]

    def dry_run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        rule = get_object_or_404(CleanupRule, pk=object_id)
        if request.method != "POST" or not self.has_change_permission(request, rule):
            raise PermissionDenied
        self._start(request, CleanupRule.objects.filter(pk=rule.pk), dry_run=True)
        return HttpResponseRedirect(reverse("admin:cleanup_cleanuprun_changelist") + f"?rule__id__exact={rule.pk}")

    def upload_list_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        rule = get_object_or_404(CleanupRule, pk=object_id)
        if not self.has_change_permission(request, rule):
            raise PermissionDenied
        error = ""
        if request.method == "POST":
            upload = request.FILES.get("csv")
            if upload is None or upload.size is None or upload.size > MAX_CSV_BYTES:
                error = str(_("choose a CSV file of at most 2 MB"))
            else:
                try:
                    text = upload.read().decode("utf-8-sig")
                    entries = services.listed_entries_from_csv(text)
                    saved = services.cleanup_listed_accounts_set(
                        rule=rule,
                        entries=entries,
                        actor=staff_actor(request),
                        replace=bool(request.POST.get("replace")),
                    )
                except UnicodeDecodeError:
                    error = str(_("the file is not UTF-8 text"))
                except services.InvalidRule as exc:
                    error = str(exc)
                else:
                    self.message_user(
                        request, gettext("%(rule)s: %(count)d accounts listed") % {"rule": rule, "count": saved}
                    )
                    return HttpResponseRedirect(reverse("admin:cleanup_cleanuprule_change", args=[rule.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "rule": rule,
            "error": error,
            "title": _("Upload accounts to delete on a date"),
        }
        return TemplateResponse(
            request, "admin/cleanup/cleanuprule/upload_list.html", context, status=400 if error else 200
        )


def natural_key(text: str) -> list[Any]:
    """temp1 < temp2 < temp10: digit runs compare as numbers, the rest without case."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)]


def why_shown(matched_by: Any) -> str:
    """The reasons a rule selected an account, as sentences (the stored list, never its JSON)."""
    if isinstance(matched_by, list):
        return "; ".join(str(reason) for reason in matched_by) or "—"
    return str(matched_by or "—")


def run_items_sorted(run: CleanupRun, **filters: Any) -> list[RunItem]:
    items = run.items.filter(**filters).select_related("deletion")
    return sorted(items, key=lambda item: (item.action, natural_key(item.kf_account)))


@admin.register(CleanupRun)
class CleanupRunAdmin(ByPlatformAdmin):
    list_display = ("id", "rule", "merchant", "status", "dry_run", "counts", "created_at")
    list_filter = ("status", "dry_run", "trigger", "rule")
    search_fields = ("authorizer__appid", "authorizer__nickname", "rule__name")
    actions = ["approve_runs", "decline_runs"]
    change_form_template = "admin/cleanup/cleanuprun/change_form.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The accounts it considered come last, as a table (sorted naturally, reasons as sentences).
        return [f.name for f in CleanupRun._meta.fields] + ["accounts"]

    @admin.display(description=_("accounts considered"))
    def accounts(self, obj: CleanupRun) -> str:
        items = run_items_sorted(obj)
        if not items:
            return "—"
        return inline_table(
            (
                (
                    item.kf_account,
                    item.get_action_display(),
                    why_shown(item.matched_by),
                    item.get_skip_reason_display() or "—",
                    self._deletion_link(item),
                )
                for item in items
            ),
            headers=(_("kf account"), _("action"), _("matched by"), _("skipped because"), _("deletion")),
            table_id="run-accounts",
            row_keys=[item.kf_account for item in items],
        )

    @staticmethod
    def _deletion_link(item: RunItem) -> str:
        if item.deletion_id is None:
            return "—"
        url = reverse("admin:kfaccounts_deletionrequest_change", args=[item.deletion_id])
        status = item.deletion.get_status_display() if item.deletion else ""
        return format_html('<a href="{}">#{} {}</a>', url, item.deletion_id, status)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("merchant"))
    def merchant(self, obj: CleanupRun) -> str:
        return _merchant(obj.authorizer)

    @admin.display(description=_("matched / created / skipped → ok / failed"))
    def counts(self, obj: CleanupRun) -> str:
        return (
            f"{obj.matched_count} / {obj.created_count} / {obj.skipped_count} → "
            f"{obj.succeeded_count} / {obj.failed_count + obj.rejected_count}"
        )

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = extra_context or {}
        if object_id is not None:
            run = CleanupRun.objects.filter(pk=object_id).first()
            extra_context["awaiting_approval"] = bool(run and run.status == RunStatus.AWAITING_APPROVAL)
            extra_context["can_decide"] = self.has_change_permission(request, run)
            # A run is a record: nothing on its page is saved (approve and decline are actions).
            extra_context |= {
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
                "show_delete": False,
            }
        return super().changeform_view(request, object_id, form_url, extra_context)

    @console_action(description=_("Approve the selected runs (shows the accounts first)"), permissions=["change"])
    def approve_runs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        runs = list(queryset.filter(status=RunStatus.AWAITING_APPROVAL).select_related("rule", "authorizer"))
        if not runs:
            self.message_user(request, _("none of the selected runs is awaiting approval"), messages.WARNING)
            return None
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("Approve cleanup runs"),
                "runs": [(run, run_items_sorted(run, action=ItemAction.DELETE)) for run in runs],
                "selected": [run.pk for run in runs],
                "action": "approve_runs",
            }
            return TemplateResponse(request, "admin/cleanup/cleanuprun/approve_confirm.html", context)
        for run in runs:
            try:
                follow_up = services.cleanup_run_approve(run=run, actor=staff_actor(request))
            except services.RunNotDecidable as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("run #%(id)d (%(merchant)s) approved: follow-up run #%(follow_up)d")
                    % {"id": run.pk, "merchant": _merchant(run.authorizer), "follow_up": follow_up.pk},
                )
        return None

    @console_action(description=_("Decline the selected runs (delete nothing)"), permissions=["change"])
    def decline_runs(self, request: HttpRequest, queryset: Any) -> None:
        for run in queryset.select_related("authorizer"):
            try:
                services.cleanup_run_decline(run=run, actor=staff_actor(request))
            except services.RunNotDecidable as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("run #%(id)d (%(merchant)s) declined")
                    % {"id": run.pk, "merchant": _merchant(run.authorizer)},
                )
