"""Every console action that cannot be undone asks first, on a page that lists its consequences.

The first post of the action (from the list or a detail page's button) changes nothing and answers
that page; only its "Yes" button, which posts the same action with confirm=yes, runs it.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from audit.models import AuditEvent
from authorizers.models import ApiKey
from kfaccounts.models import DeletionRequest

pytestmark = pytest.mark.django_db

MERCHANTS = "admin:authorizers_authorizer_changelist"
DELETIONS = "admin:kfaccounts_deletionrequest_changelist"
API_KEYS = "admin:authorizers_apikey_changelist"


def _ask(client, changelist: str, action: str, pks: list[int], **extra) -> str:
    before = (
        AuditEvent.objects.count(),
        ApiKey.objects.count(),
        DeletionRequest.objects.filter(status="failed").count(),
    )
    response = client.post(reverse(changelist), {"action": action, "index": 0, "_selected_action": pks, **extra})
    assert response.status_code == 200
    after = (
        AuditEvent.objects.count(),
        ApiKey.objects.count(),
        DeletionRequest.objects.filter(status="failed").count(),
    )
    assert after == before, "the confirmation page changed something"
    html = response.content.decode()
    assert 'id="confirm-summary"' in html and 'id="confirm-undo"' in html
    assert 'name="confirm" value="yes"' in html and f'name="action" value="{action}"' in html
    return html


def test_deactivate_lists_keys_revoked_deletions_cancelled_and_how_it_is_undone(operator_client, shop):
    html = _ask(operator_client, MERCHANTS, "deactivate", [shop.pk])
    shop.refresh_from_db()
    assert shop.status == "active"
    assert "1 merchant will be deactivated." in html
    assert "1 API key revoked" in html and "1 pending deletion cancelled" in html
    assert "authorizing the platform again on WeChat" in html
    assert 'id="confirm-action" class="console-danger"' in html and "Yes, deactivate 1 merchant" in html


def test_an_inactive_merchant_is_listed_as_left_alone_and_no_yes_button_is_offered(operator_client, shop):
    shop.status = "deactivated"
    shop.save(update_fields=["status"])
    html = _ask(operator_client, MERCHANTS, "deactivate", [shop.pk])
    assert "0 merchants will be deactivated." in html and "already deactivated" in html
    assert 'id="confirm-action"' not in html


def test_issuing_a_key_says_it_is_shown_once_and_how_to_take_it_back(superuser_client, shop):
    html = _ask(superuser_client, MERCHANTS, "issue_api_key", [shop.pk])
    assert "1 new API key will be issued. It is shown once" in html
    assert "its 1 active key keeps working" in html and "revoke it" in html
    assert ApiKey.objects.filter(authorizer=shop).count() == 1


def test_revoking_a_key_says_it_never_works_again(superuser_client, shop):
    key = shop.api_keys.get()
    html = _ask(superuser_client, API_KEYS, "revoke", [key.pk])
    assert f"kfp_{key.prefix}_…" in html and "1 API key will be revoked." in html
    assert "a revoked key never works again" in html and "console-danger" in html
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_bulk_retry_counts_what_is_retried_and_what_is_not_and_gives_the_65400_hint(operator_client, shop):
    pks = list(shop.deletions.values_list("pk", flat=True))  # one failed (65400), one pending, one succeeded
    html = _ask(operator_client, DELETIONS, "retry_failed", pks)
    assert "1 failed deletion will be sent to WeChat again." in html
    assert html.count("data-skipped") == 2 and "only a failed deletion can be retried" in html
    assert "enable the new customer service (新版客服) in the WeChat admin" in html
    assert "Yes, retry 1 deletion" in html


def test_a_detail_page_button_asks_first_and_the_confirmation_comes_back_to_that_page(
    operator_client, shop, django_capture_on_commit_callbacks
):
    page = reverse("admin:authorizers_authorizer_change", args=[shop.pk])
    detail = operator_client.get(page).content.decode()
    # Deactivate is red and says a page follows; Sync is a plain button.
    assert 'class="button console-danger" data-action="deactivate">Deactivate…' in detail
    assert 'class="button" data-action="sync_kf_accounts">' in detail
    html = _ask(operator_client, MERCHANTS, "deactivate", [shop.pk], _console_next=page)
    assert f'name="_console_next" value="{page}"' in html and f'href="{page}" class="button cancel-link"' in html
    with django_capture_on_commit_callbacks(execute=True):
        done = operator_client.post(
            reverse(MERCHANTS),
            {"action": "deactivate", "_selected_action": [shop.pk], "confirm": "yes", "_console_next": page},
        )
    assert done.status_code == 302 and done["Location"] == page
    shop.refresh_from_db()
    assert shop.status == "deactivated"


def test_every_action_that_cannot_be_undone_asks_first():
    irreversible = {
        ("authorizer", "deactivate"),
        ("authorizer", "issue_api_key"),
        ("apikey", "revoke"),
        ("deletionrequest", "retry_failed"),
        ("kfaccount", "delete_selected_kf_accounts"),
    }
    asking = set()
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or ():
            function = getattr(model_admin, action) if isinstance(action, str) else action
            if getattr(function, "confirmation", False):
                asking.add((model._meta.model_name, action))
    assert irreversible <= asking
