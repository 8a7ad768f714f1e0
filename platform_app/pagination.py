"""The one cursor paginator of every list API: opaque cursors, checked before they reach the database.

DRF's ``CursorPagination`` decodes a cursor but trusts what its position holds; a forged position the
ordering column cannot hold would reach the database (a ValueError, or a PostgreSQL DataError). Here
every cursor that is not one this API handed out answers 400 ``invalid_cursor``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from errorkit import DomainError

# Ids fit a bigint: 18 digits always do.
MAX_ID_DIGITS = 18


class InvalidCursor(DomainError):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this API handed out")


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list | None:
        self._model = queryset.model  # the cursor is checked against the ordering column's type
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF answers an undecodable cursor with 404; it is the client's error
            raise InvalidCursor() from None
        if cursor is not None and cursor.position is not None and not self._position_ok(str(cursor.position)):
            raise InvalidCursor()
        return cursor

    def _position_ok(self, position: str) -> bool:
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        field = self._model._meta.get_field(ordering.lstrip("-"))
        if isinstance(field, models.IntegerField):
            return position.isascii() and position.isdigit() and len(position) <= MAX_ID_DIGITS
        if isinstance(field, models.CharField):
            return 0 < len(position) <= (field.max_length or 255) and position.isprintable()
        return False  # an ordering this paginator does not know how to check: refuse, never guess


class OldestFirst(NewestFirst):
    ordering = "id"
