"""Starting and stopping the service's processes: used by `make run` and by the end-to-end tests.

Each child gets its own process group so that stopping it also stops what it spawned (Celery's
pool processes, gunicorn's workers).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet: keep polling until the deadline
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class Stopped(Exception):
    """A wait was interrupted on purpose (Ctrl-C)."""


def wait_while_progressing(
    check: Callable[[], bool],
    *,
    procs: Sequence[Proc],
    what: str,
    stall: float = 300.0,
    interval: float = 0.2,
    say: Callable[[str], None] | None = None,
    say_every: float = 15.0,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Poll ``check`` until it holds, however long that takes while the processes make progress.

    A loaded machine makes start-up slow, not wrong, so there is no fixed deadline: this gives up only
    when one of ``procs`` has exited (RuntimeError, with its log's tail) or when none of their logs has
    grown for ``stall`` seconds (TimeoutError). Every ``say_every`` seconds ``say`` is told what it
    still waits for; ``stopped`` (a Ctrl-C) ends the wait with Stopped.
    """
    started = last_progress = last_said = time.monotonic()
    sizes = _log_sizes(procs)
    while True:
        if stopped():
            raise Stopped(what)
        try:
            if check():
                return
        except Exception:  # not up yet: keep polling
            pass
        dead = [proc for proc in procs if proc.popen is not None and not proc.alive]
        if dead:
            names = ", ".join(proc.name for proc in dead)
            raise RuntimeError(f"{names} exited while waiting for {what}; its log ends:\n{dead[0].tail(20)}")
        now = time.monotonic()
        current = _log_sizes(procs)
        if current != sizes:
            sizes, last_progress = current, now
        elif now - last_progress > stall:
            raise TimeoutError(f"waited {now - started:.0f}s for {what}; no process logged anything for {stall:.0f}s")
        if say is not None and now - last_said >= say_every:
            say(f"still waiting for {what} ({now - started:.0f}s; the processes are alive and logging)")
            last_said = now
        time.sleep(interval)


def _log_sizes(procs: Sequence[Proc]) -> list[int]:
    sizes = []
    for proc in procs:
        try:
            sizes.append(proc.log_path.stat().st_size if proc.log_path is not None else 0)
        except OSError:
            sizes.append(0)
    return sizes


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=1).status_code == 200


@dataclass
class Proc:
    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log_path: Path | None = None
    # Where it runs (default: the checkout). Celery's filesystem broker writes ./control there.
    cwd: Path | None = None
    # Run as another OS user (root may start a server, PostgreSQL refuses to run as root).
    user: str | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Proc:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")
        else:
            out = None
        self.popen = subprocess.Popen(
            list(self.argv),
            cwd=self.cwd or ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=self.user,
        )
        if out is not None:
            out.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash or the OOM killer would."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def manage(*args: str) -> list[str]:
    return python(str(ROOT / "manage.py"), *args)


def celery(*args: str) -> list[str]:
    return python("-m", "celery", "-A", "platform_app", *args)


def gunicorn_command(
    port: int, *, workers: int = 2, threads: int = 8, timeout: int = 60, graceful_timeout: int = 5
) -> list[str]:
    """The web process as the image runs it: gunicorn with the platform's config, gthread workers,
    bound to loopback on `port`. One place for the end-to-end harness and the bench."""
    return python(
        "-m",
        "gunicorn",
        "-c",
        "python:platform_app.gunicorn_conf",
        "platform_app.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--timeout",
        str(timeout),
        "--graceful-timeout",
        str(graceful_timeout),
    )


def stop_all(procs: Sequence[Proc]) -> None:
    for proc in reversed(procs):
        proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        if proc.popen is None:
            continue
        try:
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
