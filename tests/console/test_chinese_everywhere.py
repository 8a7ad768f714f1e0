"""Every console page, form, confirmation and message reads in Chinese when the staff member asks for it.

A staff member logs in with zh-hans and the test opens the dashboard, every registered model's list,
add form and change forms, and posts every action of every list (the ones that ask first answer their
confirmation page; the others run, and the page they lead to shows their messages). In the visible
text of each page, outside the data (nicknames, kf accounts, codes and every value stored in the
rows shown), no English word of the console's own vocabulary may remain. The vocabulary is every
word of the catalog's English texts that no Chinese text keeps (so "appid" or "errcode", which the
translations keep, are not in it), plus the words of Django's admin screens. A page that fails lists
its URL and the English words found on it: translate them in django.po (`make messages`).
"""

from __future__ import annotations

import html
import re
import zoneinfo
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polib
import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin import helpers as admin_helpers
from django.contrib.auth.models import Group
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.models import ComponentEvent, PlatformAlert
from cleanup.models import CleanupRule, CleanupRun, ListedAccount, RunItem
from tests.console.conftest import client_for
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import webhook_endpoint_register

pytestmark = pytest.mark.django_db

PO = Path(__file__).resolve().parents[2] / "console" / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# The words of Django's own admin screens (translated by Django's catalog, but a page of ours could
# still print them in English, e.g. an untranslated app or model name built from them).
ADMIN_WORDS = [
    "add",
    "change",
    "delete",
    "view",
    "history",
    "save",
    "filter",
    "search",
    "select",
    "action",
    "actions",
    "selected",
    "show",
    "all",
    "yes",
    "no",
    "home",
    "recent",
    "log",
    "out",
    "password",
    "users",
    "groups",
    "clear",
    "results",
    "object",
    "objects",
]
# English kept on purpose in the Chinese console: product and protocol names, the language switch.
KEPT = {"kfplatform", "english", "wechat", "api", "url", "http", "https", "csv", "json", "ip", "id", "ids", "ping"}
PLACEHOLDER = re.compile(r"%\(\w+\)\w|\{\{.*?\}\}")
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")


def vocabulary() -> set[str]:
    """English words the Chinese catalog always translates: in some msgid, in no msgstr."""
    po = polib.pofile(str(PO))
    english: set[str] = set()
    kept: set[str] = set()
    for entry in po:
        if entry.obsolete or not entry.msgid:
            continue
        source = " ".join(filter(None, [entry.msgid, entry.msgid_plural]))
        target = " ".join([entry.msgstr, *entry.msgstr_plural.values()])
        english |= {w.lower() for w in WORD.findall(PLACEHOLDER.sub(" ", source))}
        kept |= {w.lower() for w in WORD.findall(PLACEHOLDER.sub(" ", target))}
    return {w for w in english | set(ADMIN_WORDS) if len(w) > 2 and w not in kept and w not in KEPT}


class VisibleText(HTMLParser):
    """The text a person reads: text nodes, button labels and placeholders; no scripts or styles,
    and no <pre> (the console shows stored JSON there: data)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "pre"):
            self._skip += 1
        values = dict(attrs)
        if tag == "input" and values.get("type") in ("submit", "button"):
            self.parts.append(values.get("value") or "")
        for name in ("placeholder", "title", "aria-label"):
            if values.get(name):
                self.parts.append(values[name] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "pre") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


# What third-party code builds in English without gettext, so no catalog can translate it (each is
# named by where it comes from; a text of the project's own never belongs here).
THIRD_PARTY_ENGLISH = (
    "Task Name",  # django-celery-beat: PeriodicTask.name's verbose_name is a plain string
    "Every minute UTC",  # cron-descriptor's reading of a new crontab, on celery-beat's form
)


def stored_values() -> set[str]:
    """Data, shown as it is in any language: every text the rows of the registered models hold, the
    names third-party models give their rows (str() of axes' and celery-beat's rows) and the time
    zone names celery-beat's forms offer."""
    zones = zoneinfo.available_timezones()
    values: set[str] = set(THIRD_PARTY_ENGLISH) | zones | {zone.replace("_", " ") for zone in zones}
    for model in admin.site._registry:
        text_fields = [
            f.name for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))
        ]
        for row in model._default_manager.values_list(*text_fields) if text_fields else []:
            values.update(v for v in row if v and len(v) > 1)
        if model._meta.app_label in ("axes", "django_celery_beat"):
            values.update(str(row) for row in model._default_manager.all())
    return values


def english_words(page: str, vocabulary: set[str], data: list[str]) -> set[str]:
    parser = VisibleText()
    parser.feed(page)
    text = "\n".join(parser.parts).lower()
    for value in data:  # longest first, so a value containing another goes whole; any case (capfirst)
        text = text.replace(value.lower(), " ")
    found = set()
    for token in text.split():
        # Identifiers and codes are data or protocol (kf_not_enabled, wechat.kfaccount.del, a@b, 2026-…).
        if re.search(r"[_.@/:=#{}\"\d]", token.strip(".,;:()（）[]\"'“”")):
            continue
        found |= {w.lower() for w in WORD.findall(token) if w.lower() in vocabulary}
    return found


@pytest.fixture(autouse=True)
def _language_restored():
    """The requests here activate zh-hans in this thread (LocaleMiddleware leaves it active): later
    tests in the same process must find the language they started with."""
    with translation.override(translation.get_language()):
        yield


@pytest.fixture
def every_kind_of_row(shop, make_authorizer, superuser, viewer, settings):
    """At least one row of every model the console shows, in the states its pages treat differently."""
    now = timezone.now()
    make_authorizer(nickname="面馆", appid="wx_not_eligible_01", verify_type_id=-1, func_ids=[2])
    ComponentEvent.objects.create(
        dedupe_key="k1", info_type="authorized", authorizer_appid=shop.appid, create_time=now, state="processed"
    )
    PlatformAlert.objects.create(code=PlatformAlert.Code.IP_NOT_WHITELISTED, errcode=61004, last_seen_at=now)
    for code, _label in PlatformAlert.Code.choices:
        if code.startswith("merchant"):
            PlatformAlert.objects.create(code=code, authorizer_appid=shop.appid, message="对账", last_seen_at=now)
    audit_record(
        actor=Actor.staff(superuser), action=AuditAction.AUTHORIZER_INFO_REFRESHED, authorizer_appid=shop.appid
    )
    rule = CleanupRule.objects.create(
        name="清理过期邀请", authorizer=shop, mode="delete", crontab="0 3 * * *", invite_statuses=["expired"]
    )
    ListedAccount.objects.create(rule=rule, kf_account="kf9@teahouse", delete_on=now.date())
    for status in ("awaiting_approval", "finished", "previewed"):
        run = CleanupRun.objects.create(
            rule=rule, authorizer=shop, status=status, trigger="schedule", requested_by_kind="schedule"
        )
        RunItem.objects.create(run=run, kf_account="kf1@teahouse", action="delete", matched_by=["invite_status"])
        RunItem.objects.create(run=run, kf_account="kf2@teahouse", action="skip", skip_reason="deletion_active")
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # a loopback receiver: no DNS in this test
    endpoint, _secret = webhook_endpoint_register(
        authorizer=shop, url="https://127.0.0.1:9/hook", actor=Actor.staff(superuser), event_types=["deletion.finished"]
    )
    for status in ("failed", "succeeded", "pending"):
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_type="deletion.finished", payload={"id": 1}, status=status
        )
        WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=500, error="HTTP 500")
    AccessAttempt.objects.create(username="locked_li", ip_address="10.0.0.9", failures_since_start=5)
    AccessLog.objects.create(username="ops_li", ip_address="10.0.0.8")
    AccessFailureLog.objects.create(username="locked_li", ip_address="10.0.0.9", locked_out=True)
    crontab = CrontabSchedule.objects.create(minute="0", hour="3")
    IntervalSchedule.objects.create(every=30, period="seconds")
    ClockedSchedule.objects.create(clocked_time=now + timedelta(days=1))
    SolarSchedule.objects.create(event="sunrise", latitude=31.2, longitude=121.5)
    PeriodicTask.objects.create(name="夜间清理", task="cleanup.tasks.run_due", crontab=crontab)
    return shop


def _pages(client: Client) -> dict[str, str]:
    pages: dict[str, str] = {}

    def get(url: str, *, may_be_forbidden: bool = False) -> None:
        response = client.get(url)
        if may_be_forbidden and response.status_code == 403:
            return
        assert response.status_code == 200, (url, response.status_code)
        pages[url] = response.content.decode()

    get("/admin/")
    get(reverse("admin:authorizers_authorizer_authorization_link"))
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        get(reverse(f"{name}_changelist"))
        get(reverse(f"{name}_add"), may_be_forbidden=True)  # 403: rows of this model come from elsewhere
        for pk in model._default_manager.values_list("pk", flat=True)[:4]:
            get(reverse(f"{name}_change", args=[pk]))
    return pages


def _action_pages(client: Client, wechat: Any) -> dict[str, str]:
    """Every action of every list, posted for the first row: its confirmation page, or the messages it left."""
    pages: dict[str, str] = {}
    for model, model_admin in admin.site._registry.items():
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in model_admin.actions or ():
            name = action if isinstance(action, str) else action.__name__
            pk = model._default_manager.values_list("pk", flat=True).first()
            if pk is None:
                continue
            response = client.post(
                changelist, {"action": name, "index": 0, admin_helpers.ACTION_CHECKBOX_NAME: [pk]}, follow=True
            )
            assert response.status_code == 200, (changelist, name, response.status_code)
            pages[f"{changelist} ({name})"] = response.content.decode()
    return pages


def test_every_console_page_and_message_is_in_chinese(every_kind_of_row, superuser, wechat):
    client = client_for(superuser)
    client.cookies["django_language"] = "zh-hans"
    words = vocabulary()
    assert {"merchant", "deletion", "retry", "cleanup", "approve"} <= words  # the vocabulary is the console's own
    pages = _pages(client)
    pages.update(_action_pages(client, wechat))
    assert len(pages) > 60
    data = sorted(stored_values() | {str(g) for g in Group.objects.all()}, key=len, reverse=True)
    untranslated = {url: sorted(found) for url, page in pages.items() if (found := english_words(page, words, data))}
    report = "\n".join(f"  {url}: {', '.join(found)}" for url, found in sorted(untranslated.items()))
    assert not untranslated, f"English left on {len(untranslated)} Chinese pages (translate in django.po):\n{report}"


def test_the_check_sees_english(every_kind_of_row, superuser):
    """The detector itself: English UI text is found, data and codes are not."""
    words = vocabulary()
    page = (
        "<p>Retry the selected deletions</p><td>kf_not_enabled</td><td>Tea House 茶馆</td><script>var cancel</script>"
    )
    assert english_words(page, words, ["Tea House 茶馆"]) == {"retry", "the", "selected", "deletions"}
    assert english_words(html.escape("<b>x</b>"), words, []) == set()
