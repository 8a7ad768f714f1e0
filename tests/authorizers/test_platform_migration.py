"""The migration that introduced platforms: every merchant and push recorded before it belongs to
the environment's platform afterwards, and the column ends NOT NULL (issue 19)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("authorizers", "0010_paced_periodic_jobs")]


@pytest.mark.django_db(transaction=True)
def test_existing_rows_belong_to_the_default_platform_after_the_migration(settings):
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Authorizer = old.get_model("authorizers", "Authorizer")
        ComponentEvent = old.get_model("authorizers", "ComponentEvent")
        Authorizer.objects.bulk_create(Authorizer(appid=f"wx{n:016d}") for n in range(25))
        ComponentEvent.objects.create(
            dedupe_key="old-push", info_type="component_verify_ticket", create_time="2026-01-01T00:00:00Z"
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    from authorizers.models import Authorizer as Current
    from authorizers.models import ComponentEvent as CurrentEvent
    from authorizers.models import Platform

    default = Platform.objects.get(is_default=True)
    assert default.component_appid == settings.WECHAT_COMPONENT_APPID and not default.aes_key_ciphertext
    assert Current.objects.filter(platform=default).count() == 25
    assert CurrentEvent.objects.get(dedupe_key="old-push").platform == default
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, "authorizers_authorizer")
    assert not next(c for c in columns if c.name == "platform_id").null_ok
