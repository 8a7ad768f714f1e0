"""The outcome index the console's outcome filter walks (issue 18); built concurrently on PostgreSQL."""

from django.db import migrations, models

from dbkit.indexes import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction

    dependencies = [
        ("audit", "0002_verbose_names"),
    ]

    operations = [
        AddIndexOnline(
            model_name="auditevent",
            index=models.Index(fields=["outcome"], name="audit_by_outcome"),
        ),
    ]
