"""List pages over tables of millions of rows (kf accounts, deletions, the audit log, merchants).

What Django's admin does by default costs a scan of the whole table on every page at that size:
counting every row (twice: the filtered count and the "N total" beside it), listing every merchant in
the "by merchant" filter, and a ``SELECT DISTINCT`` per value filter. ``BigTableAdmin`` turns these
into bounded work: a count that stops at COUNT_CAP, a merchant filter that shows only the merchant
selected, value filters with their values known in advance. Page sizes and orderings stay as they
were; each list's query is then one index walk of one page (docs/console.md, "Large tables").
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _

# Beyond this many rows a list says "more than 10,000" and offers its first 100 pages: nobody pages
# further, they filter or search. Counting up to it reads at most 10,001 index entries.
COUNT_CAP = 10_000


def capped_count(queryset: QuerySet) -> int:
    """The number of rows, counted up to COUNT_CAP + 1 (``SELECT COUNT(*) FROM (… LIMIT 10001)``)."""
    return queryset.order_by().values("pk")[: COUNT_CAP + 1].count()


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows; ``capped`` says whether there were more, for the pagination
    line (templates/admin/pagination.html) and the action bar (templates/admin/actions.html)."""

    capped = False

    @cached_property
    def count(self) -> int:
        queryset: QuerySet = self.object_list  # type: ignore[assignment]  # the admin passes a QuerySet
        rows = capped_count(queryset)
        self.capped = rows > COUNT_CAP
        return min(rows, COUNT_CAP)


class MerchantListFilter(admin.RelatedFieldListFilter):
    """ "By merchant" without listing 100,000 merchants: only the one selected (from a merchant's page,
    the dashboard, or a search), so the filter shows what the list is narrowed to and how to clear it.
    Its parameters stay Django's (``authorizer__id__exact``), so every existing link keeps working."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        selected = [value for value in (self.lookup_val or []) if str(value).isdigit()]
        if not selected:
            return []
        related = field.remote_field.model._default_manager.filter(pk__in=selected)
        return [(str(obj.pk), str(obj)) for obj in related]

    def has_output(self) -> bool:
        return bool(self.lookup_choices)


class BigTableAdmin(admin.ModelAdmin):
    """No full count beside the filtered one, a capped count for the filtered one."""

    show_full_result_count = False
    paginator = CappedCountPaginator

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Refuse "select all" over a list the page could not count.

        The list says "more than 10,000" and Django's "Select all" then means every matching row:
        a retry or a cancellation over millions of rows, listed first on a confirmation page, from a
        number nobody saw. Acting on all rows is offered only where the list knows how many they are;
        a narrower filter or search brings it there.
        """
        if request.POST.get("select_across") == "1" and capped_count(queryset) > COUNT_CAP:
            self.message_user(
                request,
                _(
                    "Nothing was done: the list holds more than %(cap)s rows, too many to act on at once. "
                    "Narrow it with a filter or a search first."
                )
                % {"cap": f"{COUNT_CAP:,}"},
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


def fixed_values_filter(values: dict[str, Any]) -> type[admin.AllValuesFieldListFilter]:
    """The stock value filter (same parameters, so existing links work) over values known in advance:
    no ``SELECT DISTINCT`` over the table. ``values`` maps each stored value to its label."""

    class FixedValuesFilter(admin.AllValuesFieldListFilter):
        def __init__(
            self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str
        ) -> None:
            super().__init__(field, request, params, model, model_admin, field_path)
            self.lookup_choices = list(values)  # type: ignore[assignment]  # replaces the lazy DISTINCT query before it ever runs

        def choices(self, changelist: Any) -> Any:
            for choice in super().choices(changelist):  # the stock filter shows the stored value
                yield {**choice, "display": values.get(str(choice["display"]), choice["display"])}

    return FixedValuesFilter


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """The stock value filter, its ``SELECT DISTINCT`` over millions of rows replaced on PostgreSQL by a
    loose index scan (one index probe per distinct value, through the column's B-tree index)."""

    def __init__(
        self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str
    ) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        if connection.vendor == "postgresql" and field_path == field.name:
            # Identifiers from the model's own meta, quoted; no value from the request reaches the SQL.
            table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(field.column)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH RECURSIVE v AS (SELECT min({column}) AS value FROM {table} "  # noqa: S608
                    f"UNION ALL SELECT (SELECT min({column}) FROM {table} WHERE {column} > v.value) "
                    "FROM v WHERE v.value IS NOT NULL) SELECT value FROM v WHERE value IS NOT NULL"
                )
                self.lookup_choices = [row[0] for row in cursor.fetchall()]  # type: ignore[assignment]


# What WeChat's appids look like: a search for one is an exact look-up on an indexed column.
APPID_RE = re.compile(r"wx[0-9a-f]{16}", re.IGNORECASE)


def appid_search(term: str, field: str) -> Q | None:
    """``field = term`` when the term is an appid (what staff paste from WeChat or a log line)."""
    return Q(**{field: term.lower()}) if APPID_RE.fullmatch(term) else None
