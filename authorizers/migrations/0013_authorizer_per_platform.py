"""An account may authorize several platforms (issue 19): an authorizer is unique per (appid,
platform), no longer per appid.

Safe on a large PostgreSQL table: the new unique index is built CONCURRENTLY and attached as the
constraint (dbkit.indexes.AddUniqueConstraintOnline) before the old one is dropped, so the table
keeps taking writes and is never without a uniqueness rule. Dropping a constraint is a catalog change.
"""

from django.db import migrations, models

from dbkit.columns import AlterFieldRebuildSafe
from dbkit.indexes import AddUniqueConstraintOnline


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY

    dependencies = [
        ("authorizers", "0012_alerts_per_platform"),
    ]

    operations = [
        AddUniqueConstraintOnline(
            model_name="authorizer",
            constraint=models.UniqueConstraint(fields=("appid", "platform"), name="authorizer_one_per_platform"),
        ),
        AlterFieldRebuildSafe(
            model_name="authorizer",
            name="appid",
            field=models.CharField(max_length=32, verbose_name="appid"),
        ),
    ]
