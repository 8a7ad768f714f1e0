"""Platforms (issue 19): the environment's platform becomes a row, and every merchant and push
recorded so far belongs to it.

Safe on a large PostgreSQL table: the column is added nullable (no rewrite), filled in batches of
committed UPDATEs (``atomic = False``), then made NOT NULL without a full-table lock
(dbkit.columns.SetNotNullOnline). The platform's row holds no secret: the environment keeps them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from dbkit.columns import SetNotNullOnline

BATCH = 2_000


def fill(apps, schema_editor):
    Platform = apps.get_model("authorizers", "Platform")
    default = Platform.objects.filter(component_appid=settings.WECHAT_COMPONENT_APPID).first()
    if default is None:
        default = Platform.objects.create(
            component_appid=settings.WECHAT_COMPONENT_APPID, name="default", is_default=True
        )
    for name in ("Authorizer", "ComponentEvent"):
        model = apps.get_model("authorizers", name)
        while True:
            ids = list(model.objects.filter(platform__isnull=True).order_by("pk").values_list("pk", flat=True)[:BATCH])
            if not ids:
                break
            model.objects.filter(pk__in=ids).update(platform=default)


def _nullable_platform(related_name):
    return models.ForeignKey(
        db_index=False,
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to="authorizers.platform",
        verbose_name="platform",
    )


def _platform(related_name):
    return models.ForeignKey(
        db_index=False,
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to="authorizers.platform",
        verbose_name="platform",
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("authorizers", "0010_paced_periodic_jobs"),
    ]

    operations = [
        migrations.CreateModel(
            name="Platform",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True, verbose_name="name")),
                ("component_appid", models.CharField(max_length=32, unique=True, verbose_name="component appid")),
                ("is_default", models.BooleanField(default=False, verbose_name="default (from the environment)")),
                (
                    "status",
                    models.CharField(
                        choices=[("active", "Active"), ("retired", "Retired")],
                        default="active",
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                ("appsecret_ciphertext", models.TextField(blank=True, verbose_name="appsecret (encrypted)")),
                ("token_ciphertext", models.TextField(blank=True, verbose_name="message token (encrypted)")),
                ("aes_key_ciphertext", models.TextField(blank=True, verbose_name="EncodingAESKey (encrypted)")),
                (
                    "previous_aes_key_ciphertext",
                    models.TextField(blank=True, verbose_name="previous EncodingAESKey (encrypted)"),
                ),
                ("key_rotated_at", models.DateTimeField(blank=True, null=True, verbose_name="AES key rotated at")),
                ("retired_at", models.DateTimeField(blank=True, null=True, verbose_name="retired at")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
            ],
            options={
                "verbose_name": "platform",
                "verbose_name_plural": "platforms",
                "ordering": ["-is_default", "name"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("is_default", True)), fields=("is_default",), name="one_default_platform"
                    )
                ],
            },
        ),
        migrations.AddField(model_name="authorizer", name="platform", field=_nullable_platform("authorizers")),
        migrations.AddField(model_name="componentevent", name="platform", field=_nullable_platform("events")),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        SetNotNullOnline(model_name="authorizer", name="platform", field=_platform("authorizers")),
        SetNotNullOnline(model_name="componentevent", name="platform", field=_platform("events")),
    ]
