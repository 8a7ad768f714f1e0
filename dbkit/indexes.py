"""Migration operations for indexes on tables of millions of rows.

On PostgreSQL both build the index ``CONCURRENTLY``: the table keeps taking writes while it builds
(a plain ``CREATE INDEX`` blocks every INSERT and UPDATE for as long as it takes). The migration that
uses them declares ``atomic = False``: PostgreSQL refuses a concurrent build inside a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import migrations
from django.db.models import Index, OrderBy
from django.db.utils import DatabaseError

log = logging.getLogger(__name__)


def _native_null_order(index: Index) -> Index:
    """The same index without ``NULLS FIRST`` on ascending (``NULLS LAST`` on descending) keys, which
    SQLite refuses in ``CREATE INDEX`` ("unsupported use of NULLS FIRST") but applies by itself: it
    sorts NULL as the smallest value. PostgreSQL sorts NULL as the largest, so it needs the clause."""
    expressions = []
    for expression in index.expressions:
        if isinstance(expression, OrderBy) and (
            (expression.nulls_first and not expression.descending) or (expression.nulls_last and expression.descending)
        ):
            expression = OrderBy(expression.expression, descending=expression.descending)
        expressions.append(expression)
    name, args, kwargs = index.deconstruct()
    return Index(*expressions, **{key: value for key, value in kwargs.items() if key != "expressions"})


@contextmanager
def native_null_order(model: Any) -> Iterator[None]:
    """While SQLite rebuilds the table of a (historical) model, its indexes in the form SQLite takes.

    Altering a column on SQLite copies the table into a new one and re-creates every index of the
    model, which fails on a ``NULLS FIRST`` key (see ``_native_null_order``)."""
    saved = model._meta.indexes
    model._meta.indexes = [_native_null_order(index) for index in saved]
    try:
        yield
    finally:
        model._meta.indexes = saved


class AddIndexOnline(migrations.AddIndex):
    """``AddIndex`` (same state, so makemigrations sees the model's index), concurrent on PostgreSQL;
    on SQLite an ascending ``NULLS FIRST`` key is built as a plain ascending one (the same order)."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            model = to_state.apps.get_model(app_label, self.model_name)
            if self.allow_migrate_model(schema_editor.connection.alias, model):
                schema_editor.add_index(model, _native_null_order(self.index))
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.index.name)
            schema_editor.remove_index(model, index, concurrently=True)


def trigram_indexes(table: str, columns: list[str]) -> migrations.RunPython:
    """GIN trigram indexes on ``upper(column)`` (the expression Django's ``icontains`` compares on
    PostgreSQL), so a substring search reads the index instead of every row. PostgreSQL only: on any
    other database this is a no-op. Not declared on the model (SQLite has no such index), so
    makemigrations never sees them; they are named ``<table>_<column>_trgm``.

    pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it. Where it
    cannot be created the indexes are skipped with a warning: searches still work, by scanning.
    """

    def names() -> list[tuple[str, str]]:
        return [(f"{table}_{column}_trgm"[:63], column) for column in columns]

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        with schema_editor.connection.cursor() as cursor:
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except DatabaseError as exc:
                log.warning("pg_trgm not available (%s): substring searches on %s will scan", exc, table)
                return
            for name, column in names():
                cursor.execute(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(name)} ON {quote(table)} "
                    f"USING gin (upper({quote(column)}::text) gin_trgm_ops)"
                )

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for name, _ in names():
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")

    return migrations.RunPython(forwards, backwards, elidable=False)


class AddUniqueConstraintOnline(migrations.AddConstraint):
    """``AddConstraint`` of a plain ``UniqueConstraint`` on columns (the same state), its index built
    ``CONCURRENTLY`` on PostgreSQL and then attached as the constraint (``ADD CONSTRAINT … UNIQUE
    USING INDEX``, which only takes a brief lock): the table keeps taking writes while it builds.
    A duplicate already in the table fails the build and leaves no constraint."""

    model_name: str  # set by AddConstraint (the stubs do not declare them)
    constraint: Any

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            with native_null_order(model):  # SQLite rebuilds the table and every index of it
                schema_editor.add_constraint(model, self.constraint)
            return
        quote = schema_editor.quote_name
        table, name = quote(model._meta.db_table), quote(self.constraint.name)
        columns = ", ".join(quote(model._meta.get_field(field).column) for field in self.constraint.fields)
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # a build that failed half-way
        schema_editor.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ({columns})")
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")
