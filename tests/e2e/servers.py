"""A PostgreSQL and a Redis of a suite's own, started from the installed server binaries.

They live in a temporary directory on spare ports, so a suite may kill and restart them without
harming anything else on the machine. `binaries_missing()` says what is absent; the suites skip
loudly on it, and fail instead in CI (CI=true).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from devtools import procs


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


def binaries_missing() -> list[str]:
    missing = []
    pg = _postgres_bin()
    if pg is None or not (pg / "initdb").exists():
        missing.append("postgres/initdb (/usr/lib/postgresql/*/bin)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("an OS user 'postgres' (PostgreSQL does not run as root)")
    return missing


class PostgresServer:
    """initdb'd into a temporary directory; trust authentication on 127.0.0.1 only."""

    def __init__(self, logs: Path) -> None:
        bindir = _postgres_bin()
        assert bindir is not None, "no PostgreSQL server binaries"
        self.bindir = bindir
        self.user = "postgres" if os.geteuid() == 0 else None
        # Not under pytest's tmp (mode 700, root's): the server's user must own its directory.
        self.root = Path(tempfile.mkdtemp(prefix="kfplatform-pg-"))
        self.data = self.root / "data"
        self.port = procs.free_port()
        self.logs = logs
        self.proc: procs.Proc | None = None
        self.restarts = 0
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.root,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.proc = procs.Proc(
            f"postgres-{self.restarts}",
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.root}",
                "-c",
                "max_connections=300",
                # A killed server loses nothing the OS holds, so fsync can go; synchronous_commit
                # must stay on (a crash would otherwise drop commits already acknowledged).
                "-c",
                "fsync=off",
            ],
            dict(os.environ),
            self.logs / f"postgres-{self.restarts}.log",
            cwd=self.root,
            user=self.user,
        ).start()
        procs.wait_until(self.ready, timeout=60, what="the suite's PostgreSQL")

    def ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=1) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def crash_restart(self) -> None:
        """An immediate shutdown (SIGQUIT: no checkpoint, crash recovery on start), then start again."""
        assert self.proc is not None
        self.proc.signal(signal.SIGQUIT)
        assert self.proc.popen is not None
        self.proc.popen.wait(timeout=30)
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """No persistence: a restart loses every queued message, the worst case the rows must survive."""

    def __init__(self, logs: Path) -> None:
        self.port = procs.free_port()
        self.logs = logs
        self.proc: procs.Proc | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        assert redis_server is not None
        self.proc = procs.Proc(
            f"redis-{self.restarts}",
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            dict(os.environ),
            self.logs / f"redis-{self.restarts}.log",
            cwd=self.logs,
        ).start()
        procs.wait_until(self.ready, timeout=30, what="the suite's Redis")

    def ready(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def crash_restart(self, down_seconds: float = 1.0) -> None:
        """SIGKILL (everything queued is gone), a moment down, then a fresh empty server."""
        assert self.proc is not None
        self.proc.kill()
        import time

        time.sleep(down_seconds)
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
