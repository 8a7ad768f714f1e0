"""Staff users in each role and a merchant with kf accounts and deletions in every state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import Actor, audit_record
from authorizers.api_keys import api_key_issue
from kfaccounts.models import DeletionRequest, KfAccount

PASSWORD = "correct horse battery staple 42"


def _staff(username: str, group: str | None = None, **extra) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator(db) -> User:
    return _staff("ops_li", "operator")


@pytest.fixture
def viewer(db) -> User:
    return _staff("viewer_wang", "viewer")


@pytest.fixture
def superuser(db) -> User:
    return _staff("root_zhang", is_superuser=True)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(operator) -> Client:
    return client_for(operator)


@pytest.fixture
def viewer_client(viewer) -> Client:
    return client_for(viewer)


@pytest.fixture
def superuser_client(superuser) -> Client:
    return client_for(superuser)


@pytest.fixture
def shop(make_authorizer, component_ready):
    """An eligible merchant with three kf accounts (one gone), an API key and deletions in each state."""
    merchant = make_authorizer(nickname="Tea House 茶馆", alias="teahouse")
    now = timezone.now()
    for name, nick, gone in (("kf1@teahouse", "Amy", None), ("kf2@teahouse", "Bo", None), ("kf3@teahouse", "Cai", now)):
        KfAccount.objects.create(
            authorizer=merchant,
            kf_account=name,
            kf_nick=nick,
            kf_wx=f"wx_{nick.lower()}",
            last_seen_at=now,
            gone_at=gone,
        )
    api_key_issue(authorizer=merchant, actor=Actor.system("test"), name="shop key")
    base = {"authorizer": merchant, "requested_by_kind": "api_key", "requested_by_label": "kfp_test…"}
    failed = DeletionRequest.objects.create(
        kf_account="old1@teahouse",
        status="failed",
        reason="kf_not_enabled",
        errcode=65400,
        errmsg="please enable new custom service",
        attempts=1,
        finished_at=now,
        **base,
    )
    audit_record(
        actor=Actor.system("deletions"),
        action=AuditAction.WECHAT_KF_DELETE_CALLED,
        authorizer_appid=merchant.appid,
        subject=failed.kf_account,
        outcome="kf_not_enabled",
        errcode=65400,
        errmsg="please enable new custom service",
        detail={"deletion_id": failed.pk, "attempt": 1},
    )
    DeletionRequest.objects.create(
        kf_account="old2@teahouse",
        status="pending",
        reason="quota_exhausted",
        errcode=45009,
        next_attempt_at=now + timedelta(hours=5),
        attempts=1,
        **base,
    )
    DeletionRequest.objects.create(
        kf_account="old3@teahouse", status="succeeded", errcode=0, attempts=1, finished_at=now, **base
    )
    return merchant
