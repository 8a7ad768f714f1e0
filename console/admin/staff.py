"""Staff members on one page each: created with a role in one step, listed with their role, unlocked.

Replaces Django's user admin (two pages, a Staff-status tick and a picker of every permission) and
its group admin (the roles are code, console/roles.py). Only superusers see it: no role holds the
``auth`` permissions. Members are never deleted (their audit trail names them): untick "active".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm, UsernameField
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console import staff
from console.admin.base import ObjectActionsAdmin
from console.admin.helpers import console_action, local_time, staff_actor
from console.roles import OPERATOR, VIEWER


class StaffCreateForm(forms.ModelForm):
    """Username, role and password on one page; the member can log in as soon as it is saved."""

    role = forms.ChoiceField(label=_("Role"), choices=staff.ROLES, widget=forms.RadioSelect, initial=VIEWER)
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password again"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    class Meta:
        model = User
        fields = ("username", "email")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            try:
                validate_password(first, user=User(username=cleaned.get("username", "")))
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class StaffChangeForm(UserChangeForm):
    role = forms.ChoiceField(label=_("Role"), choices=staff.ROLES, widget=forms.RadioSelect)

    class Meta:
        model = User
        fields = ("username", "password", "first_name", "last_name", "email", "is_active")
        field_classes = {"username": UsernameField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].initial = staff.role_of(self.instance) or VIEWER


class RoleFilter(admin.SimpleListFilter):
    title = _("role")
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(code, name) for code, name in staff.ROLE_NAMES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() == staff.SUPERUSER:
            return queryset.filter(is_superuser=True)
        if self.value() in (VIEWER, OPERATOR):
            return queryset.filter(is_superuser=False, groups__name=self.value())
        return None


class StaffAdmin(ObjectActionsAdmin, UserAdmin):
    editable_form = True
    add_form = StaffCreateForm
    form = StaffChangeForm
    add_form_template = "console/staff_add_form.html"
    add_fieldsets = ((None, {"fields": ("username", "email", "role", "password1", "password2")}),)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Role"), {"fields": ("role", "is_active", "lock_state")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("lock_state", "last_login", "date_joined")
    list_display = ("username", "role", "is_active", "lock_state", "last_login_shown", "date_joined_shown")
    list_filter = (RoleFilter, "is_active")
    search_fields = ("username", "first_name", "last_name", "email")
    filter_horizontal = ()
    actions = ["unlock"]
    object_actions = ("unlock",)
    object_action_labels = {"unlock": _("Unlock")}

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return staff.staff_with_lock_state(super().get_queryset(request).prefetch_related("groups"))

    def object_action_applies(self, name: str, obj: Any) -> bool:
        return bool(getattr(obj, "is_locked_out", False))

    @admin.display(description=_("role"))
    def role(self, obj: User) -> str:
        code = staff.role_of(obj)
        return str(staff.ROLE_NAMES[code]) if code else gettext("none (cannot use the console)")

    @admin.display(description=_("login"))
    def lock_state(self, obj: User) -> str:
        if getattr(obj, "is_locked_out", False):
            return format_html('<span class="console-warning" data-locked="yes">{}</span>', gettext("locked out"))
        return gettext("not locked")

    @admin.display(description=_("last login"), ordering="last_login")
    def last_login_shown(self, obj: User) -> str:
        return local_time(obj.last_login)

    @admin.display(description=_("joined"), ordering="date_joined")
    def date_joined_shown(self, obj: User) -> str:
        return local_time(obj.date_joined)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        actor = staff_actor(request)
        role = form.cleaned_data["role"]
        if not change:
            created = staff.staff_member_create(
                username=obj.username,
                email=obj.email,
                password=form.cleaned_data["password1"],
                role=role,
                actor=actor,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        staff.staff_member_role_set(user=obj, role=role, actor=actor)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # the role is the only relation, and the service set it

    def response_add(self, request: HttpRequest, obj: User, post_url_continue: str | None = None) -> HttpResponse:
        # One step: back to the list, where the new member shows with its role (Django's user admin
        # would open a second page of permissions).
        self.message_user(
            request,
            gettext("Created %(username)s as %(role)s: they can log in now.")
            % {"username": obj.username, "role": self.role(obj)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:auth_user_changelist"))

    @console_action(description=_("Unlock the selected members (forget their failed logins)"), permissions=["change"])
    def unlock(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            removed = staff.staff_member_unlock(username=user.get_username(), actor=staff_actor(request))
            text = (
                gettext("Unlocked %(username)s: they can log in again now.")
                if removed
                else gettext("Nothing to unlock: %(username)s was not locked out.")
            )
            self.message_user(
                request,
                text % {"username": user.get_username()},
                messages.SUCCESS if removed else messages.INFO,
            )


for model in (User, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
admin.site.register(User, StaffAdmin)
