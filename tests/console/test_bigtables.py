"""A list counted only up to its cap offers no "select all", and a post that selects all anyway is
refused: an action never runs on rows nobody could count."""

from __future__ import annotations

from django.urls import reverse

from console.admin.bigtables import COUNT_CAP
from dbkit.bulk import insert_many
from kfaccounts.models import DeletionRequest

DELETIONS = "admin:kfaccounts_deletionrequest_changelist"


def _failed_deletions(authorizer, count: int) -> None:
    insert_many(
        DeletionRequest,
        shared={
            "authorizer_id": authorizer.pk,
            "status": "failed",
            "reason": "kf_not_enabled",
            "requested_by_kind": "api_key",
        },
        varying={"kf_account": [f"bulk{i}@teahouse" for i in range(count)]},
    )


def _retry_all(client, **query):
    """What the browser posts after "Select all": the page's ticked rows and select_across=1."""
    url = reverse(DELETIONS)
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    ticked = list(DeletionRequest.objects.filter(status="failed").order_by("-id").values_list("pk", flat=True)[:100])
    return client.post(
        url, {"action": "retry_failed", "index": 0, "select_across": "1", "_selected_action": ticked}, follow=True
    )


def test_select_all_over_more_rows_than_the_list_counts_is_refused_and_changes_nothing(operator_client, shop):
    _failed_deletions(shop, COUNT_CAP)  # with the shop's own failed deletion: one more than the cap
    failed = DeletionRequest.objects.filter(status="failed").count()
    assert failed == COUNT_CAP + 1

    page = operator_client.get(reverse(DELETIONS)).content.decode()
    assert "more than 10,000" in page or "more than 10000" in page
    assert 'class="question' not in page  # no "Select all 10000 deletions"

    response = _retry_all(operator_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was done: the list holds more than 10,000 rows" in html
    assert 'name="confirm"' not in html  # refused before the confirmation page
    assert DeletionRequest.objects.filter(status="failed").count() == failed
    assert not DeletionRequest.objects.filter(attempts__gt=1).exists()


def test_select_all_over_a_counted_list_still_asks_first(operator_client, shop):
    _failed_deletions(shop, COUNT_CAP)
    # Narrowed by a search to one kf account, the list knows its size and "select all" works as before.
    page = operator_client.get(reverse(DELETIONS) + "?q=old1%40teahouse").content.decode()
    assert "more than" not in page

    html = _retry_all(operator_client, q="old1%40teahouse").content.decode()
    assert "Nothing was done" not in html
    assert 'name="confirm"' in html and "old1@teahouse" in html
