"""Actions that cannot be undone ask first: one confirmation page listing their consequences.

``@confirmed(consequences=...)`` sits under ``@console_action``. Posted from the list or a detail
page's button, the action first answers a page that says what will happen to which objects, how
many, and how (or whether) it can be undone; only the page's own "Yes" button (which posts the
same action again with ``confirm=yes``) runs it. The consequences function reads, never writes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin import helpers as admin_helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

CONFIRM_FIELD = "confirm"
NEXT = "_console_next"  # the detail page a button came from (console.admin.base goes back there)


@dataclass
class Target:
    """One object the action will act on, and what will happen to it."""

    label: str
    effects: list[str] = field(default_factory=list)
    url: str = ""


@dataclass
class Consequences:
    """What a confirmation page says. ``targets`` are acted on; ``skipped`` are not, with why."""

    title: str
    summary: str
    undo: str
    confirm_label: str
    targets: list[Target] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Shown above the targets for the whole batch ("1 API key will be revoked, 2 deletions cancelled").
    totals: list[str] = field(default_factory=list)


ConsequencesOf = Callable[[Any, HttpRequest, QuerySet], Consequences]
Action = Callable[..., Any]


def confirmed(*, consequences: ConsequencesOf, danger: bool = False) -> Callable[[Action], Action]:
    """Make an admin action ask first, on a page built from ``consequences(model_admin, request, queryset)``.

    ``danger`` styles its buttons (the detail page's and the confirmation's) as destructive.
    """

    def wrap(action: Action) -> Action:
        @functools.wraps(action)
        def ask_then_run(model_admin: Any, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
            if request.POST.get(CONFIRM_FIELD) == "yes":
                return action(model_admin, request, queryset)
            return confirmation_page(
                model_admin,
                request,
                queryset,
                action_name=action.__name__,
                consequences=consequences(model_admin, request, queryset),
                danger=danger,
            )

        ask_then_run.confirmation = True  # type: ignore[attr-defined]
        ask_then_run.danger = danger  # type: ignore[attr-defined]
        return ask_then_run

    return wrap


def confirmation_page(
    model_admin: Any,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action_name: str,
    consequences: Consequences,
    danger: bool,
    template: str = "console/confirm_action.html",
    extra: dict[str, Any] | None = None,
) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": consequences.title,
        "consequences": consequences,
        "danger": danger,
        "selected_ids": [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "action_checkbox_name": admin_helpers.ACTION_CHECKBOX_NAME,
        "action_name": action_name,
        "confirm_field": CONFIRM_FIELD,
        "next_field": NEXT,
        "next_url": request.POST.get(NEXT, ""),
        **(extra or {}),
    }
    return TemplateResponse(request, template, context)
