"""Every failure reason has words and, where a person must act, a hint, shown wherever the failure is."""

from __future__ import annotations

import inspect

import pytest
from django.urls import reverse

from console.guidance import GUIDANCE, MERCHANT, NOBODY, PLATFORM
from kfaccounts.models import DeletionReason
from wechat import errors

HINT = "enable the new customer service (新版客服) in the WeChat admin"


def test_every_deletion_reason_and_every_wechat_error_reason_has_guidance():
    reasons = {value for value, _label in DeletionReason.choices}
    for _name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.WeChatError) and isinstance(getattr(cls, "reason", None), str):
            reasons.add(cls.reason)
    missing = sorted(reason for reason in reasons if reason not in GUIDANCE)
    assert missing == []
    for code, guidance in GUIDANCE.items():
        assert guidance.side in (MERCHANT, PLATFORM, NOBODY), code
        assert "_" not in str(guidance.meaning).split("(")[0].replace("component_verify_ticket", ""), code


@pytest.mark.django_db
def test_the_65400_hint_is_on_the_deletion_page_the_deletions_list_and_the_merchants_page(operator_client, shop):
    failed = shop.deletions.get(status="failed")
    for url in (
        reverse("admin:kfaccounts_deletionrequest_change", args=[failed.pk]),
        reverse("admin:kfaccounts_deletionrequest_changelist"),
        reverse("admin:authorizers_authorizer_change", args=[shop.pk]),
    ):
        html = operator_client.get(url).content.decode()
        assert HINT in html and 'data-hint="kf_not_enabled"' in html, url
    # Only a failure gets a hint: the pending deletion deferred for quota has none.
    listing = operator_client.get(reverse("admin:kfaccounts_deletionrequest_changelist")).content.decode()
    assert listing.count("data-hint=") == 1
