"""`make run`: the whole service on one machine with nothing installed but Python.

Starts the WeChat sandbox, the web server, a Celery worker and beat; waits for the sandbox's first
verify-ticket push; authorizes the sandbox's demo merchants through the real flow (platform →
WeChat's authorization page → callback) and syncs the kf accounts of every eligible one; prints the
URLs and, the first time, a staff password; Ctrl-C stops all.

It can be stopped and started again on the same var/: the sandbox keeps its state in memory, so each
start waits for a ticket pushed by this sandbox (the stored one belongs to the previous) and
authorizes the merchants again; the platform drops the token and ticket the new sandbox refuses
(authorizers/tokens.py), as it would after any change of its WeChat environment.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.services import Actor
from authorizers.api_keys import api_key_issue
from authorizers.models import Authorizer, ComponentCredential
from authorizers.policy import eligibility
from cleanup import services as cleanup_services
from cleanup.models import CleanupRule
from devtools import authpage, procs
from devtools.staff import DEMO_STAFF_USERNAME, demo_staff_exists, demo_staff_password_set
from kfaccounts.services import kf_accounts_sync_request

# Which permission sets the demo grants, by sandbox account kind and certification: some merchants
# are eligible and some are not (uncertified), so the admin has something to show at once.
DEMO_GRANTS = {
    ("subscription", True): [1, 2, 6, 15],
    ("subscription", False): [1, 6],
    ("service", True): [1, 6, 7],
    ("mini_program", True): [17, 18, 19],
    ("mini_program", False): [17, 18, 19],
}


class Command(BaseCommand):
    help = "Run the embedded demo: sandbox, web, workers and beat, with demo merchants authorized."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT", 8001)))
        parser.add_argument("--no-demo-data", action="store_true", help="do not authorize demo merchants")

    def handle(self, *args: Any, port: int, sandbox_port: int, no_demo_data: bool, **options: Any) -> None:
        web = f"http://127.0.0.1:{port}"
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        env = {
            **os.environ,
            "WECHAT_API_BASE": sandbox,
            "WECHAT_MP_BASE": sandbox,
            "WECHAT_OPEN_BASE": sandbox,
            "PUBLIC_BASE_URL": web,  # also the sandbox's registered domain (it pushes there)
            "SANDBOX_PUSH_URL": f"{web}/wechat/component/events/",
            "PYTHONUNBUFFERED": "1",
            # Webhook receivers you try out in the demo listen on this machine, over http.
            "WEBHOOK_ALLOW_PRIVATE_URLS": os.environ.get("WEBHOOK_ALLOW_PRIVATE_URLS", "true"),
        }
        logs = settings.VAR_DIR / "logs"
        children = [
            procs.Proc(
                "sandbox", procs.manage("wechat_sandbox", "--port", str(sandbox_port)), env, logs / "sandbox.log"
            ),
            procs.Proc("web", procs.manage("runserver", f"127.0.0.1:{port}", "--noreload"), env, logs / "web.log"),
            # As in production: deletions on the default queue, webhook deliveries on their own worker.
            procs.Proc(
                "worker",
                procs.celery("worker", "-Q", "celery", "-P", "threads", "-c", "16", "-l", "info"),
                env,
                logs / "worker.log",
            ),
            procs.Proc(
                "webhook-worker",
                procs.celery("worker", "-Q", "webhooks", "-P", "threads", "-c", "8", "-n", "webhooks@%h", "-l", "info"),
                env,
                logs / "webhook-worker.log",
            ),
            procs.Proc("beat", procs.celery("beat", "-l", "info"), env, logs / "beat.log"),
        ]
        password = None if demo_staff_exists() else demo_staff_password_set()
        started = timezone.now()
        stopping = False

        def on_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        def wait_for(check: Callable[[], bool], what: str) -> None:
            self.stdout.write(f"waiting for {what}…")
            procs.wait_while_progressing(
                check, procs=children, what=what, say=self.stdout.write, stopped=lambda: stopping
            )

        try:
            self.stdout.write(f"starting {', '.join(child.name for child in children)} (logs in {logs}/)")
            for child in children:
                child.start()
            wait_for(procs.http_ok(f"{sandbox}/sandbox/health"), f"the WeChat sandbox on {sandbox}")
            wait_for(procs.http_ok(f"{web}/healthz"), f"the web server on {web}")
            wait_for(
                lambda: self._has_ticket_since(started),
                "the sandbox's first component_verify_ticket push (see sandbox.log and web.log)",
            )
            api_key_line = "" if no_demo_data else self._authorize_demo_merchants(web, sandbox)
            self._banner(web, sandbox, password, api_key_line, logs)
            while not stopping:
                dead = [child.name for child in children if not child.alive]
                if dead:
                    raise CommandError(f"{', '.join(dead)} stopped unexpectedly; see {logs}")
                time.sleep(0.5)
        except procs.Stopped:
            pass  # Ctrl-C while starting: stop what started
        except (RuntimeError, TimeoutError) as exc:
            raise CommandError(f"{exc}\nlogs: {logs}/") from exc
        finally:
            self.stdout.write("stopping…")
            procs.stop_all(children)
            self.stdout.write("stopped")

    @staticmethod
    def _has_ticket_since(started: datetime) -> bool:
        """A ticket this run's sandbox pushed: one stored by a previous run is unknown to it."""
        return (
            ComponentCredential.objects.filter(
                component_appid=settings.WECHAT_COMPONENT_APPID, ticket_received_at__gte=started
            )
            .exclude(verify_ticket_ciphertext="")
            .exists()
        )

    def _authorize_demo_merchants(self, web: str, sandbox: str) -> str:
        """Each sandbox account goes through /wechat/authorize/ → WeChat's page → the callback."""
        accounts = requests.get(f"{sandbox}/sandbox/accounts", timeout=5).json()["accounts"]
        for account in accounts:
            # The platform's page, then its PC link the way a browser follows it: WeChat (and the
            # sandbox) refuse the authorization page without the platform's origin as Referer.
            start = requests.get(f"{web}/wechat/authorize/", allow_redirects=False, timeout=10)
            if start.status_code != 200:
                raise CommandError(f"/wechat/authorize/ answered {start.status_code}")
            link = authpage.page_links(start.text)[authpage.PC_LINK]["href"]
            page = requests.get(link, headers={"Referer": authpage.referer_for(start.url)}, timeout=10)
            if page.status_code != 200:
                raise CommandError(f"the sandbox's authorization page answered {page.status_code}: {page.text[:300]}")
            query = parse_qs(urlparse(link).query)
            grant = DEMO_GRANTS.get((account["kind"], account.get("certified", True)), [1, 6])
            confirm = requests.post(
                f"{sandbox}/sandbox/authorize",
                json={
                    "appid": account["appid"],
                    "func": grant,
                    "pre_auth_code": query["pre_auth_code"][0],
                    "redirect_uri": query["redirect_uri"][0],
                },
                timeout=10,
            )
            confirm.raise_for_status()
            back = requests.get(confirm.json()["redirect"], timeout=30)
            if back.status_code != 200:
                raise CommandError(f"authorization callback for {account['appid']} answered {back.status_code}")
        eligible = [a for a in Authorizer.objects.all() if eligibility(a).eligible]
        for authorizer in eligible:  # every eligible merchant's kf accounts are there to look at
            kf_accounts_sync_request(authorizer=authorizer, actor=Actor.system("make run"))
        if not eligible:
            return ""
        merchant = next((a for a in eligible if a.alias == "lotustea"), eligible[0])
        self._example_rule(merchant)
        _, key = api_key_issue(authorizer=merchant, name="demo", actor=Actor.system("make run"))
        return f"Demo API key for {merchant.nickname} ({merchant.appid}):\n  {key}\n  curl -H 'Authorization: Api-Key {key}' {web}/api/v1/kf-accounts/"

    @staticmethod
    def _example_rule(merchant: Authorizer) -> None:
        """One cleanup rule in dry-run mode, on a schedule, with a first preview at once."""
        name = "Example: expired or rejected invitations"
        actor = Actor.system("make run")
        if CleanupRule.objects.filter(authorizer=merchant, name=name).exists():
            return
        rule = cleanup_services.cleanup_rule_create(
            authorizer=merchant,
            actor=actor,
            values={
                "name": name,
                "mode": "dry_run",
                "invite_statuses": ["expired", "rejected"],
                "schedule_kind": "interval",
                "interval_seconds": max(300, settings.CLEANUP_MIN_INTERVAL_SECONDS),
            },
        )
        cleanup_services.cleanup_run_request(rule=rule, actor=actor, dry_run=True, trigger="demo")

    def _banner(self, web: str, sandbox: str, password: str | None, api_key_line: str, logs: Path) -> None:
        lines = [
            "",
            "kfplatform is running (embedded: SQLite, filesystem broker, sandbox WeChat)",
            f"  admin       {web}/admin/   user: {DEMO_STAFF_USERNAME}  "
            + (
                f"password: {password}  (shown once; `make password` sets a new one)"
                if password
                else "(password set on the first run; `make password` prints a new one)"
            ),
            f"  API docs    {web}/api/docs/",
            f"  authorize   {web}/wechat/authorize/   (opens the sandbox's WeChat authorization page)",
            f"  sandbox     {sandbox}/sandbox/calls   (every call WeChat received)",
            f"  cleanup     {web}/admin/cleanup/cleanuprun/   (an example rule previews every 5 minutes)",
            f"  logs        {logs}/",
        ]
        if api_key_line:
            lines.append("  " + api_key_line)
        lines.append("Data stays in var/ between runs (`make clean` starts over). Ctrl-C stops everything.")
        self.stdout.write("\n".join(lines))
        sys.stdout.flush()
