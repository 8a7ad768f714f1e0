"""`make run`: the whole service on one machine with nothing installed but Python.

Starts the WeChat sandbox, the web server, a Celery worker and beat; waits for the sandbox's first
verify-ticket push; authorizes the sandbox's demo merchants through the real flow (platform →
WeChat's authorization page → callback); prints the URLs and a staff password; Ctrl-C stops all.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from authorizers.api_keys import api_key_issue
from authorizers.models import Authorizer, ComponentCredential
from authorizers.policy import eligibility
from cleanup import services as cleanup_services
from cleanup.models import CleanupRule
from devtools import authpage, procs

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
        password = self._staff_password()
        stopping = False

        def on_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            for child in children:
                child.start()
            procs.wait_until(procs.http_ok(f"{sandbox}/sandbox/health"), timeout=30, what="the sandbox")
            procs.wait_until(procs.http_ok(f"{web}/healthz"), timeout=60, what="the web server")
            procs.wait_until(self._has_ticket, timeout=60, what="the first component_verify_ticket push")
            api_key_line = "" if no_demo_data else self._authorize_demo_merchants(web, sandbox)
            self._banner(web, sandbox, password, api_key_line, logs)
            while not stopping:
                dead = [child.name for child in children if not child.alive]
                if dead:
                    raise CommandError(f"{', '.join(dead)} stopped unexpectedly; see {logs}")
                time.sleep(0.5)
        finally:
            self.stdout.write("stopping…")
            procs.stop_all(children)
            self.stdout.write("stopped")

    def _staff_password(self) -> str | None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return None
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username="admin", email="", password=password)
        return password

    @staticmethod
    def _has_ticket() -> bool:
        return ComponentCredential.objects.filter(
            component_appid=settings.WECHAT_COMPONENT_APPID, ticket_received_at__isnull=False
        ).exists()

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
            f"  admin       {web}/admin/   user: admin  "
            + (
                f"password: {password}  (shown once)"
                if password
                else "(existing user; `manage.py changepassword admin`)"
            ),
            f"  API docs    {web}/api/docs/",
            f"  authorize   {web}/wechat/authorize/   (opens the sandbox's WeChat authorization page)",
            f"  sandbox     {sandbox}/sandbox/calls   (every call WeChat received)",
            f"  cleanup     {web}/admin/cleanup/cleanuprun/   (an example rule previews every 5 minutes)",
            f"  logs        {logs}/",
        ]
        if api_key_line:
            lines.append("  " + api_key_line)
        lines.append("Ctrl-C stops everything.")
        self.stdout.write("\n".join(lines))
        sys.stdout.flush()
