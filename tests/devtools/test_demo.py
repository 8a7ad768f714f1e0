"""`make run`'s demo as a user runs it: real processes, stopped with Ctrl-C, started again on the same var/.

Each start must reach a usable state (the banner, the console logged into, the demo API key answering,
every eligible merchant's kf accounts synced) however often it is restarted and however late the
sandbox pushes its first ticket; Ctrl-C must leave no process behind.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools import procs

pytestmark = pytest.mark.e2e

READY = "Ctrl-C stops everything."
# Generous: a loaded 2-core machine starts four Python processes slowly. The demo itself has no
# deadline (it waits while its processes make progress); this only bounds a hung test.
START_LIMIT = 900
# The demo merchants the sandbox seeds with kf accounts that run_demo's grants make eligible.
ELIGIBLE_KF = {"alice@lotustea", "dispatch@harborlogistics"}
_OWN_PREFIXES = ("DJANGO_", "DATABASE_", "CELERY_", "REDIS_", "WECHAT_", "SANDBOX_", "KFPLATFORM_", "PORT")


class Demo:
    """One checkout's `make run`: `manage.py migrate` then `manage.py run_demo`, as the Makefile runs them."""

    def __init__(self, tmp: Path, **extra_env: str) -> None:
        self.var = tmp / "var"
        self.port, self.sandbox_port = procs.free_port(), procs.free_port()
        self.web = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        self.env.update(
            {
                "DJANGO_DEBUG": "true",
                "KFPLATFORM_VAR_DIR": str(self.var),
                "DATABASE_URL": f"sqlite:///{self.var}/db.sqlite3",
                "PORT": str(self.port),
                "SANDBOX_PORT": str(self.sandbox_port),
                "NO_PROXY": "127.0.0.1,localhost",
                **extra_env,
            }
        )
        self.runs = 0
        self.popen: subprocess.Popen | None = None
        self.out: Path | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            procs.manage(*args), env=self.env, cwd=procs.ROOT, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self) -> None:
        self.runs += 1
        self.manage("migrate", "--noinput", "-v", "0")
        self.out = self.var / f"run_demo.{self.runs}.out"
        with open(self.out, "wb") as out:
            self.popen = subprocess.Popen(
                procs.manage("run_demo"),
                env=self.env,
                cwd=procs.ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: Ctrl-C below reaches it as a terminal's would
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out else ""

    def wait_ready(self) -> str:
        assert self.popen is not None
        deadline = time.monotonic() + START_LIMIT
        while READY not in self.output():
            assert self.popen.poll() is None, f"run_demo exited {self.popen.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"not ready after {START_LIMIT}s:\n{self.output()}"
            time.sleep(0.5)
        return self.output()

    def ctrl_c(self) -> None:
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGINT)
        try:
            assert self.popen.wait(timeout=120) == 0, self.output()
        finally:
            if self.popen.poll() is None:
                os.killpg(self.popen.pid, signal.SIGKILL)
        assert "stopped" in self.output().splitlines()[-1]

    def leftovers(self) -> list[int]:
        """Every process still running with this demo's var/ in its environment (children, pools)."""
        marker = f"KFPLATFORM_VAR_DIR={self.var}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def kill_leftovers(self) -> None:
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.var / "db.sqlite3", timeout=30) as db:
            return db.execute(sql).fetchall()


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator[list[Demo]]:
    made: list[Demo] = []
    yield made
    for demo in made:
        if demo.popen is not None and demo.popen.poll() is None:
            os.killpg(demo.popen.pid, signal.SIGKILL)
        demo.kill_leftovers()


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def assert_usable(demo: Demo, banner: str, password: str) -> None:
    """What a new user does with the banner: log into the console, call the API with the demo key."""
    session = _session()
    login = f"{demo.web}/admin/login/"
    session.get(login, timeout=30)
    page = session.post(
        login,
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": login},
        timeout=30,
    )
    assert page.status_code == 200 and page.url == f"{demo.web}/admin/", page.url
    key = re.search(r"Api-Key ([^']+)'", banner)
    assert key, banner
    api = _session().get(
        f"{demo.web}/api/v1/kf-accounts/", headers={"Authorization": f"Api-Key {key.group(1)}"}, timeout=30
    )
    assert api.status_code == 200, api.text[:300]
    # The sync of every eligible merchant was queued at start; the worker runs them soon after.
    deadline = time.monotonic() + 300
    while not {row[0] for row in demo.query("SELECT kf_account FROM kfaccounts_kfaccount")} >= ELIGIBLE_KF:
        assert time.monotonic() < deadline, demo.query("SELECT kf_account FROM kfaccounts_kfaccount")
        time.sleep(1)


def password_from(banner: str) -> str:
    found = re.search(r"password: (\S+)", banner)
    assert found, banner
    return found.group(1)


def test_the_demo_starts_again_and_again_on_the_same_var_and_ctrl_c_stops_everything(
    tmp_path: Path, demo_factory: list[Demo]
) -> None:
    demo = Demo(tmp_path)
    demo_factory.append(demo)

    demo.start()
    first = demo.wait_ready()
    assert "make password" in first and "make clean" in first
    assert_usable(demo, first, password_from(first))
    demo.ctrl_c()
    assert demo.leftovers() == []

    # Again on the same var/: the new sandbox knows neither the stored ticket nor the tokens.
    demo.start()
    second = demo.wait_ready()
    assert "password:" not in second.split("admin", 1)[1].splitlines()[0]  # not shown again
    new_password = password_from(demo.manage("demo_password"))  # `make password`
    assert_usable(demo, second, new_password)
    assert demo.query("SELECT count(*) FROM auth_user") == [(1,)]
    demo.ctrl_c()
    assert demo.leftovers() == []


def test_the_demo_waits_for_a_first_ticket_that_comes_late(tmp_path: Path, demo_factory: list[Demo]) -> None:
    """The sandbox holds its first push 90 s: longer than the 60 s the demo used to give it."""
    demo = Demo(tmp_path, SANDBOX_FIRST_PUSH_DELAY="90")
    demo_factory.append(demo)
    started = time.monotonic()
    demo.start()
    banner = demo.wait_ready()
    assert time.monotonic() - started >= 90
    assert "still waiting for the sandbox's first component_verify_ticket push" in banner
    assert_usable(demo, banner, password_from(banner))
    demo.ctrl_c()
    assert demo.leftovers() == []


def test_ctrl_c_while_waiting_for_the_first_ticket_stops_everything(tmp_path: Path, demo_factory: list[Demo]) -> None:
    demo = Demo(tmp_path, SANDBOX_FIRST_PUSH_DELAY="3600")
    demo_factory.append(demo)
    demo.start()
    deadline = time.monotonic() + START_LIMIT
    while "waiting for the sandbox's first component_verify_ticket push" not in demo.output():
        assert demo.popen is not None and demo.popen.poll() is None, demo.output()
        assert time.monotonic() < deadline, demo.output()
        time.sleep(0.5)
    demo.ctrl_c()
    assert demo.leftovers() == []
