"""Actions on a detail page: buttons that post the list's own action for this one row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

from console.admin.helpers import NoDeleteAdmin

NEXT = "_console_next"
# Every field of a record is read-only: changes happen through actions (services), never the form.
READ_ONLY = {
    "show_save": False,
    "show_save_and_continue": False,
    "show_save_and_add_another": False,
    "show_delete": False,
}


class ObjectActionsAdmin(NoDeleteAdmin):
    """``object_actions`` names list actions also offered as buttons on the change page.

    A button posts to the changelist exactly as ticking the row and picking the action would, so
    Django's own permission filtering applies (an action the user may not run is neither shown nor
    run), and the user comes back to the page they were on.
    """

    object_actions: tuple[str, ...] = ()
    # Shorter names for the buttons, where the list's wording ("the selected …") reads oddly.
    object_action_labels: dict[str, Any] = {}
    change_form_template = "console/change_form.html"
    # Most pages are records: every field read-only, changes through actions (services) only.
    editable_form = False

    def object_action_applies(self, name: str, obj: Any) -> bool:
        """Whether the button makes sense for this row (a retry only for a failed deletion…)."""
        return True

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        allowed = self.get_actions(request)
        obj = self.get_object(request, object_id)
        # An action that asks first (console.admin.confirm) and cannot be undone is styled as such.
        buttons = [
            (name, self.object_action_labels.get(name, entry[2]), getattr(entry[0], "danger", False))
            for name in self.object_actions
            if (entry := allowed.get(name)) is not None and obj is not None and self.object_action_applies(name, obj)
        ]
        context = {
            "object_action_buttons": buttons,
            "console_next_field": NEXT,
            **({} if self.editable_form else READ_ONLY),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def response_action(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        response = super().response_action(request, queryset)
        target = request.POST.get(NEXT, "")
        if (
            isinstance(response, HttpResponseRedirect)
            and target
            and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
        ):
            return HttpResponseRedirect(target)
        return response


__all__ = ["ObjectActionsAdmin", "admin"]
