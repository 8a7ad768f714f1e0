"""cleanup.Alert rows (the reconciliation's merchant alerts) move into authorizers.PlatformAlert,
the one alert table, and cleanup.Alert goes."""

from django.db import migrations


def alerts_move(apps, schema_editor):
    Alert = apps.get_model("cleanup", "Alert")
    PlatformAlert = apps.get_model("authorizers", "PlatformAlert")
    for old in Alert.objects.order_by("raised_at", "pk").iterator():
        new = PlatformAlert.objects.create(
            code=old.kind,
            authorizer_appid=old.authorizer_appid,
            message=old.message,
            last_seen_at=old.last_seen_at,
            cleared_at=old.cleared_at,
            cleared_by="",
        )
        # first_seen_at is auto_now_add: set it to when the old alert was raised afterwards.
        PlatformAlert.objects.filter(pk=new.pk).update(first_seen_at=old.raised_at)


def alerts_back(apps, schema_editor):
    Alert = apps.get_model("cleanup", "Alert")
    PlatformAlert = apps.get_model("authorizers", "PlatformAlert")
    merchant_codes = ("merchant_gone", "merchant_unknown")
    for new in PlatformAlert.objects.filter(code__in=merchant_codes).order_by("first_seen_at", "pk"):
        # The old table kept one row per key: the newest row of each wins.
        Alert.objects.update_or_create(
            key=f"{new.code}:{new.authorizer_appid}",
            defaults={
                "kind": new.code,
                "authorizer_appid": new.authorizer_appid,
                "message": new.message,
                "raised_at": new.first_seen_at,
                "last_seen_at": new.last_seen_at,
                "cleared_at": new.cleared_at,
            },
        )
    PlatformAlert.objects.filter(code__in=merchant_codes).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cleanup", "0002_alert_merchant_kinds"),
        ("authorizers", "0006_alerts_per_merchant"),
    ]

    operations = [
        migrations.RunPython(alerts_move, alerts_back),
        migrations.DeleteModel(name="Alert"),
    ]
