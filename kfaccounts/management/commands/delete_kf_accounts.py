"""python manage.py delete_kf_accounts APPID ACCOUNT… [--file F] [--wait]"""

from __future__ import annotations

import getpass
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.models import ActorKind
from audit.services import Actor
from authorizers.platforms import UnknownAuthorization, authorization_find
from kfaccounts import services
from kfaccounts.models import DeletionReason, DeletionRequest, DeletionStatus
from kfaccounts.validation import MAX_BULK, MalformedKfAccount


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown user"


def _settled(deletion: DeletionRequest) -> bool:
    # Waiting for a daily quota to reset can take hours: report those as deferred instead of waiting.
    return deletion.is_terminal or (
        deletion.status == DeletionStatus.PENDING and deletion.reason == DeletionReason.QUOTA_EXHAUSTED
    )


class Command(BaseCommand):
    help = "Delete customer-service accounts of a merchant. Runs on the Celery workers; --wait follows them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("appid", help="the merchant's authorizer appid")
        parser.add_argument("accounts", nargs="*", metavar="ACCOUNT", help="kf accounts, prefix@wechatid")
        parser.add_argument("--file", type=Path, help="read accounts from a file, one per line (# comments)")
        parser.add_argument("--wait", action="store_true", help="show progress until every deletion has settled")
        parser.add_argument("--timeout", type=float, default=0, help="with --wait: give up after this many seconds")
        parser.add_argument("--platform", help="the component appid, when the merchant authorized several platforms")

    def handle(
        self,
        *args: Any,
        appid: str,
        accounts: list[str],
        file: Path | None,
        wait: bool,
        timeout: float,
        platform: str | None = None,
        **options: Any,
    ) -> None:
        if file is not None:
            try:
                lines = file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc}") from None
            accounts = [*accounts, *(line.strip() for line in lines if line.strip() and not line.startswith("#"))]
        if not accounts:
            raise CommandError("name at least one account, or --file")
        try:
            authorizer = authorization_find(appid=appid, component_appid=platform)
        except UnknownAuthorization as exc:
            raise CommandError(exc.message) from None
        actor = Actor(kind=ActorKind.STAFF, label=f"delete_kf_accounts ({_os_user()})")
        accounts = list(dict.fromkeys(accounts))
        deletions: list[DeletionRequest] = []
        try:
            # The service takes what one API request may (MAX_BULK); a file may name more.
            for start in range(0, len(accounts), MAX_BULK):
                deletions += services.deletions_request(
                    authorizer=authorizer,
                    kf_accounts=accounts[start : start + MAX_BULK],
                    actor=actor,
                    record_rejections=True,
                )
        except MalformedKfAccount as exc:
            raise CommandError(str(exc)) from None
        ids = [d.pk for d in deletions]
        self.stderr.write(f"{len(ids)} deletion(s) requested for {authorizer}")
        if wait:
            deletions = self._follow(ids, timeout)
        self._summary(deletions)
        # Without --wait only what already ended badly (rejected here, failed earlier) is a failure.
        if any(d.status != DeletionStatus.SUCCEEDED and (wait or d.is_terminal) for d in deletions):
            raise SystemExit(1)

    def _follow(self, ids: list[int], timeout: float) -> list[DeletionRequest]:
        deadline = time.monotonic() + timeout if timeout else None
        with tqdm(total=len(ids), unit="account", desc="deleting", file=self.stderr._out) as bar:
            while True:
                deletions = services.deletions_for(ids)
                done = sum(1 for d in deletions if _settled(d))
                bar.update(done - bar.n)
                if done == len(ids) or (deadline is not None and time.monotonic() > deadline):
                    return deletions
                time.sleep(0.3)

    def _summary(self, deletions: list[DeletionRequest]) -> None:
        rows = [("ID", "ACCOUNT", "STATUS", "REASON", "ERRCODE", "ERRMSG")]
        rows += [
            (
                str(d.pk),
                d.kf_account,
                d.status,
                d.reason or "",
                "" if d.errcode is None else str(d.errcode),
                (d.errmsg or "")[:60],
            )
            for d in deletions
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        counts = Counter(d.status for d in deletions)
        self.stdout.write(", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
