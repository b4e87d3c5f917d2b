"""A throwaway PostgreSQL server for the tests and the feedback benchmark: ``initdb`` into a new
temporary folder, started on a free loopback port with trust authentication for ``postgres``, and
stopped and deleted afterwards. Nothing of the machine's own clusters is touched.

The binaries are found in ``$PG_BIN`` (a folder holding ``initdb`` and ``pg_ctl``), else the newest
``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql`` package), else ``PATH``.

PostgreSQL refuses to run as root. Started by root (a CI container, this project's machines), the
server runs as the ``postgres`` system user Debian's package creates: the folder is handed to that
user and ``initdb`` and ``pg_ctl`` run with its user and group ids (subprocess's ``user=``/``group=``);
clients connect over TCP, so they need no access to the folder.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_service.errors import QaError

SERVER_USER = "postgres"  # the role initdb creates, and the system user root runs the server as


def find_postgres_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [path for path in debian.iterdir() if re.fullmatch(r"\d+(\.\d+)?", path.name)]
        candidates += [path / "bin" for path in sorted(versions, key=lambda path: float(path.name), reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    return next(
        (folder for folder in candidates if (folder / "pg_ctl").is_file() and (folder / "initdb").is_file()), None
    )


def why_no_postgres() -> str | None:
    """Why a throwaway server cannot be started here (None: it can)."""
    if find_postgres_bin() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql; or set PG_BIN to its bin folder)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root, and there is no {SERVER_USER!r} system user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    bin_dir: Path

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        """Create ``dbname`` (with PostgreSQL's ``createdb``); returns its URL."""
        command = [str(self.bin_dir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, dbname]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise QaError(f"createdb {dbname} failed (exit {done.returncode}): {done.stderr.strip()}")
        return self.url(dbname)


@contextmanager
def temporary_postgres(*, fsync: bool = True, timeout: float = 60.0) -> Iterator[PostgresServer]:
    """A running server for the block's duration. ``fsync=False`` (tests) trades crash safety of the
    whole machine for speed; a killed client process loses no committed transaction either way."""
    reason = why_no_postgres()
    if reason is not None:
        raise QaError(f"cannot start PostgreSQL: {reason}")
    bin_dir = find_postgres_bin()
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="qa-postgres-"))
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=timeout, check=False, **run_as)
        if done.returncode != 0:
            raise QaError(f"{Path(args[0]).name} failed (exit {done.returncode}): {done.stderr.strip()[-1000:]}")

    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1" + ("" if fsync else " -F")
    try:
        initdb = ["-D", str(data), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        run(str(bin_dir / "initdb"), *initdb)
        log = str(folder / "server.log")
        run(str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", str(int(timeout)), "-l", log, "-o", options)
        try:
            yield PostgresServer("127.0.0.1", port, SERVER_USER, bin_dir)
        finally:
            run(str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
