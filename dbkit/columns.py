"""Migration operations that change columns of big tables without blocking them.

``ALTER COLUMN … SET NOT NULL`` reads every row under PostgreSQL's strongest lock (no reads, no
writes) for as long as the scan takes. ``SetNotNullOnline`` proves the column has no NULL with a
``CHECK … NOT VALID`` constraint validated under a lock that lets reads and writes go on, after
which PostgreSQL (12+) sets NOT NULL from that proof without scanning. The migration that uses it
fills the column first (in batches, ``atomic = False``).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from dbkit.indexes import native_null_order


class AlterFieldRebuildSafe(migrations.AlterField):
    """``AlterField`` that SQLite can apply to a table with ``NULLS FIRST`` indexes (it rebuilds the
    table and its indexes; dbkit.indexes.native_null_order). PostgreSQL: Django's own."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        self._rebuild(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        self._rebuild(app_label, schema_editor, from_state, to_state)

    def _rebuild(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        to_model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, to_model):
            return
        from_model = from_state.apps.get_model(app_label, self.model_name)
        with native_null_order(from_model):
            schema_editor.alter_field(
                from_model, from_model._meta.get_field(self.name), to_model._meta.get_field(self.name)
            )


class SetNotNullOnline(AlterFieldRebuildSafe):
    """``AlterField`` to a NOT NULL field (the same state, so makemigrations sees the model's field),
    with the database change made without a long lock on PostgreSQL.

    Only the nullability may change, and the field declares no default (elsewhere Django would fill
    NULLs with it, and a callable default of the real model may not run against the historical
    schema): every row must already hold a value, or the validation fails and nothing changes.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            self._rebuild(app_label, schema_editor, from_state, to_state)
            return
        new_field = model._meta.get_field(self.name)
        quote = schema_editor.quote_name
        table, column = quote(model._meta.db_table), quote(new_field.column)
        check = quote(f"{model._meta.db_table}_{new_field.column}_notnull"[:63])
        for statement in (
            f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID",
            f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}",  # SHARE UPDATE EXCLUSIVE: writes go on
            f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL",  # proven by the check: no scan
            f"ALTER TABLE {table} DROP CONSTRAINT {check}",
        ):
            schema_editor.execute(statement)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            self._rebuild(app_label, schema_editor, from_state, to_state)
            return
        field = model._meta.get_field(self.name)
        quote = schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {quote(model._meta.db_table)} ALTER COLUMN {quote(field.column)} DROP NOT NULL"
        )
