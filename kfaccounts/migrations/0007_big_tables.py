"""Indexes for millions of rows (issue 18): the claim's partial index of pending deletions, the kf
account look-up and ordering, and trigram indexes for the console's substring search (PostgreSQL).

Built concurrently on PostgreSQL (dbkit/indexes.py), so the tables keep taking writes meanwhile.
"""

from django.db import migrations, models

from dbkit.indexes import AddIndexOnline, trigram_indexes


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run inside a transaction

    dependencies = [
        ("authorizers", "0008_action_permissions"),
        ("kfaccounts", "0006_action_permissions"),
    ]

    operations = [
        AddIndexOnline(
            model_name="deletionrequest",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["authorizer", "id"], name="deletion_pending_claim"
            ),
        ),
        AddIndexOnline(
            model_name="kfaccount",
            index=models.Index(fields=["kf_account"], name="kf_account_by_name"),
        ),
        trigram_indexes("kfaccounts_kfaccount", ["kf_account", "kf_nick", "kf_wx"]),
        # The kf search also finds a merchant's accounts by the merchant's nickname.
        trigram_indexes("authorizers_authorizer", ["nickname"]),
    ]
