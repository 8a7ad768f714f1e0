"""JSON-array conditions in SQL on both databases the project runs on (PostgreSQL and SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db.models import BooleanField, F, Func


class JSONArrayHasAny(Func):
    """True where the JSON array in ``column`` holds any of ``numbers``: a condition for ``filter()``.

    Django's ``__contains`` on a JSONField is PostgreSQL-only; this is one expression for both, so a
    rule written once in SQL works in the demo's SQLite as in production. A missing or non-array
    value holds none. Numbers compare as JSON numbers (1 and 1.0 alike), never as strings.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, numbers: Iterable[int]) -> None:
        self.numbers = sorted(set(numbers))
        if not self.numbers:
            raise ValueError("JSONArrayHasAny needs at least one number")
        super().__init__(F(column))

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **extra_context: Any) -> Any:  # SQLite
        column, params = compiler.compile(self.source_expressions[0])
        marks = ", ".join(["%s"] * len(self.numbers))
        # Only the compiled column and placeholders are formatted in; every value is a parameter.
        array = f"CASE WHEN json_type({column}) = 'array' THEN {column} END"
        sql = f"EXISTS (SELECT 1 FROM json_each({array}) AS e WHERE e.type IN ('integer', 'real') AND e.value IN ({marks}))"  # noqa: S608
        return sql, [*params, *params, *self.numbers]

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        # jsonb containment of a one-element array per number: the GIN-friendly form of "any of".
        return f"({column} @> ANY (%s::jsonb[]))", [*params, [json.dumps([n]) for n in self.numbers]]
