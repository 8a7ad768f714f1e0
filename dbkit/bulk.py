"""Insert many rows that differ in a few columns, at the cost of the few.

Django's ``bulk_create`` prepares every field of every instance in Python and sends one array per
column: for a request of 1,000 deletions that is 20,000 values prepared and quoted, most of them the
same (the merchant, the requester, the timestamps, the empty fields). ``insert_many`` prepares the
shared values once and sends one array per *varying* column; PostgreSQL expands them with ``unnest``.
Elsewhere (SQLite, the embedded default) it is ``bulk_create``: the rows written are the same, which
``tests/dbkit`` checks column by column on whichever database the suite runs on.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models import Field

M = TypeVar("M", bound=models.Model)


def insert_many(model: type[M], *, shared: Mapping[str, Any], varying: Mapping[str, Sequence[Any]]) -> list[M]:
    """Insert one row per position of the ``varying`` columns, each with the ``shared`` values too.

    ``varying`` maps field names to column values (an id, not an instance, for a foreign key).
    Fields named in neither take their model default (and ``auto_now``/``auto_now_add`` their time,
    the same for every row). Returns the saved instances in input order, primary keys set.
    """
    lengths = {len(values) for values in varying.values()}
    if len(lengths) > 1:
        raise ValueError(f"varying columns differ in length: {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    if count == 0:
        return []
    if set(shared) & set(varying):
        raise ValueError(f"columns both shared and varying: {sorted(set(shared) & set(varying))}")
    concrete = model._meta.concrete_fields
    pk = model._meta.pk
    assert pk is not None
    by_name = {f.name: f for f in concrete if f is not pk}
    unknown = set(varying) - set(by_name)
    if unknown:
        raise ValueError(f"{model.__name__} has no column {sorted(unknown)}")
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        rows = [model(**shared, **{name: values[i] for name, values in varying.items()}) for i in range(count)]
        return model._default_manager.using(alias).bulk_create(rows)

    # A column that holds one value throughout is sent once (a request's rows are usually all pending).
    same = {name for name, given in varying.items() if all(v == given[0] for v in given)}
    shared = {**shared, **{name: varying[name][0] for name in same}}
    varying = {name: given for name, given in varying.items() if name not in same}
    # One instance carries the shared values through the fields' own defaults and pre_save.
    template = model(**shared)
    sql, shared_fields, varying_fields = _statement(model, tuple(sorted(varying)), alias)
    values: dict[str, Any] = {}  # attname → the shared value, as the instances hold it
    params: list[Any] = []
    for field in shared_fields:
        values[field.attname] = value = field.pre_save(template, add=True)
        params.append(field.get_db_prep_save(value, connection))
    for field in varying_fields:
        params.append([field.get_db_prep_save(v, connection) for v in varying[field.name]])
    if not varying_fields:
        params.append(count)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # RETURNING lists the rows as they were inserted, in the SELECT's order: the input's (the
        # guarantee Django's own bulk_create relies on for its VALUES lists).
        ids = [row[0] for row in cursor.fetchall()]
    related = [
        (by_name[n], v)
        for n, v in shared.items()
        if n in by_name and by_name[n].is_relation and isinstance(v, models.Model)
    ]
    attnames = [f.attname for f in concrete]
    instances = []
    for i, row_id in enumerate(ids):
        row = {**values, pk.attname: row_id, **{by_name[n].attname: given[i] for n, given in varying.items()}}
        instance = model.from_db(alias, attnames, [row[a] for a in attnames])
        for field, obj in related:
            field.set_cached_value(instance, obj)  # type: ignore[attr-defined]
        instances.append(instance)
    return instances


@functools.cache
def _statement(
    model: type[models.Model], varying: tuple[str, ...], alias: str
) -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
    """The INSERT for these varying columns, and the fields whose values it takes, in order:
    one value per shared field, then one array per varying field (or the row count if none)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    fields = [f for f in model._meta.concrete_fields if f is not pk]
    shared = tuple(f for f in fields if f.name not in varying)
    varied = tuple(f for f in fields if f.name in varying)
    selects = [f"v.{quote(f.column)}" if f in varied else f"%s::{f.db_type(connection)}" for f in fields]
    if varied:
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in varied)
        names = ", ".join(quote(f.column) for f in varied)
        rows_from = f"unnest({arrays}) WITH ORDINALITY AS v({names}, ordinal)"
    else:  # every column the same: one row per number
        rows_from = "generate_series(1, %s) AS v(ordinal)"
    # Names come from the model's metadata, quoted; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"SELECT {', '.join(selects)} FROM {rows_from} "
        f"ORDER BY v.ordinal RETURNING {quote(pk.column)}"
    )
    return sql, shared, varied
