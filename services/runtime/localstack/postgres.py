"""A private, throwaway PostgreSQL cluster on 127.0.0.1 for dev, tests and CI.

Sync use::

    with PostgresCluster() as pg:              # temp dir, free port, removed on exit
        url = pg.create_database("cases")      # postgresql+asyncpg://postgres@127.0.0.1:P/cases

Async use: ``async with PostgresCluster() as pg: await pg.acreate_database("cases")``.

As root (CI), initdb and postgres refuse to run, so every server command runs as an
unprivileged OS user (``XIEZUO_PG_OS_USER``, default ``postgres``; created if missing) via
``runuser``, and the cluster's base dir is chowned to it. Such a base dir must sit below
directories that user can traverse (the default temp dir under /tmp does). ``XIEZUO_PG_BINDIR``
overrides where initdb/pg_ctl/postgres are looked up.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from services.runtime.localstack.ports import LOOPBACK, free_port, is_port_free

SUPERUSER = "postgres"
DEFAULT_OS_USER = "postgres"
# Linux sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    """The private PostgreSQL cluster could not be found, created, started or used."""


def find_pg_bindir() -> Path:
    """Return the dir holding initdb/pg_ctl/postgres, newest /usr/lib/postgresql first."""
    override = os.environ.get("XIEZUO_PG_BINDIR")
    if override:
        if not (Path(override) / "initdb").exists():
            raise PostgresError(f"XIEZUO_PG_BINDIR={override} has no initdb")
        return Path(override)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda initdb: _version_key(initdb.parent.parent.name),
        reverse=True,
    )
    if found:
        return found[0].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and (bindir / "initdb").exists():
            return bindir
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: run "
        "deploy/local/setup.sh (as root it installs the Debian `postgresql` package) "
        "or set XIEZUO_PG_BINDIR"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def render_postgresql_conf(*, port: int, socket_dir: str) -> str:
    """Return the settings this module layers over initdb's postgresql.conf."""
    settings = {
        "listen_addresses": f"'{LOOPBACK}'",
        "port": str(port),
        "unix_socket_directories": f"'{socket_dir}'",
        # A throwaway cluster: trade crash safety for test speed.
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "off",
        # Four services with pools plus tests can exceed the default 100.
        "max_connections": "300",
        "log_min_messages": "warning",
    }
    lines = ["# Written by services.runtime.localstack.postgres; rewritten on every start."]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


class PostgresCluster:
    """A private cluster: initdb once, then start/stop `postgres` on a loopback port.

    Given no `base_dir`, it uses a temp dir that is removed on stop. Data lives in
    ``<base_dir>/data`` (also the unix socket dir); the server log is ``<base_dir>/postgres.log``.
    """

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        port: int | None = None,
        bindir: Path | str | None = None,
        os_user: str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self._owns_base_dir = base_dir is None
        self._base_dir: Path | None = Path(base_dir).resolve() if base_dir is not None else None
        self._port = port
        self._bindir = Path(bindir) if bindir is not None else None
        self._os_user = os_user or os.environ.get("XIEZUO_PG_OS_USER", DEFAULT_OS_USER)
        self.start_timeout = start_timeout
        self._started = False

    # -- public surface ------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """Return the cluster's base dir."""
        if self._base_dir is None:
            raise PostgresError("PostgresCluster has no base dir until it is started")
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        """Return PGDATA."""
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        """Return the server log file."""
        return self.base_dir / "postgres.log"

    @property
    def port(self) -> int:
        """Return the TCP port on 127.0.0.1."""
        if self._port is None:
            raise PostgresError("PostgresCluster has no port until it is started")
        return self._port

    @property
    def host(self) -> str:
        """Return the listen address."""
        return LOOPBACK

    @property
    def running(self) -> bool:
        """Tell whether this object started the server and has not stopped it."""
        return self._started

    def url(self, name: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        """Return a SQLAlchemy URL such as ``postgresql+asyncpg://postgres@127.0.0.1:P/name``."""
        return f"{driver}://{SUPERUSER}@{LOOPBACK}:{self.port}/{name}"

    def dsn(self, name: str = "postgres") -> str:
        """Return a libpq/asyncpg DSN such as ``postgresql://postgres@127.0.0.1:P/name``."""
        return self.url(name, driver="postgresql")

    def start(self) -> PostgresCluster:
        """Create the cluster if needed, start it, and block until it accepts connections."""
        if self._started:
            raise PostgresError(f"PostgresCluster already running on port {self.port}")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    async def astart(self) -> PostgresCluster:
        """Async `start()`, run in a worker thread."""
        return await asyncio.to_thread(self.start)

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and remove an owned temp dir; idempotent."""
        atexit.unregister(self._stop_at_exit)
        if self._base_dir is not None and (self.data_dir / "postmaster.pid").exists():
            result = self._pg(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
                check=False,
            )
            if result.returncode != 0 and self._server_running():
                # A fast stop that stalls still must not leave a server holding the port.
                self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop", check=False)
        self._started = False
        if self._owns_base_dir and self._base_dir is not None:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None

    async def astop(self) -> None:
        """Async `stop()`."""
        await asyncio.to_thread(self.stop)

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its `url()`."""
        if not _DB_NAME.match(name):
            raise PostgresError(f"invalid database name {name!r}: use letters, digits, _")
        result = self._run(
            [
                str(self._bin("createdb")),
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                name,
            ],
            check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise PostgresError(f"createdb {name} failed: {result.stderr.strip()}")
        return self.url(name)

    async def acreate_database(self, name: str) -> str:
        """Async `create_database()`."""
        return await asyncio.to_thread(self.create_database, name)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last `lines` lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, PostgresError):
            return "(no server log)"
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> PostgresCluster:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # -- internals -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        self._prepare_base_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self._server_running():
            # Left running by an owner that crashed; restart it on the port chosen now.
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)
        if self._port is None:
            self._port = free_port()
        elif not is_port_free(self._port):
            raise PostgresError(f"PostgreSQL port {self._port} on {LOOPBACK} is already in use")
        socket_dir = str(self.data_dir)
        if len(f"{socket_dir}/.s.PGSQL.{self._port}") > MAX_SOCKET_PATH:
            # Too long for a unix socket; clients here use TCP, and pg_ctl -w reads
            # postmaster.pid rather than connecting, so no socket at all is fine.
            socket_dir = ""
        conf = self.data_dir / "xiezuo.conf"
        conf.write_text(render_postgresql_conf(port=self._port, socket_dir=socket_dir))
        self._give_to_os_user(conf)
        atexit.register(self._stop_at_exit)
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(int(self.start_timeout)),
            "start",
            check=False,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()}\n"
                f"log {self.log_path}:\n{self.log_tail()}"
            )
        self._started = True
        self._wait_ready()

    def _prepare_base_dir(self) -> None:
        """Create the base dir and, as root, hand it to the unprivileged OS user."""
        if self._base_dir is None:
            self._base_dir = Path(tempfile.mkdtemp(prefix="xiezuo-pg-"))
        self._base_dir.mkdir(parents=True, exist_ok=True)
        if not _is_root():
            return
        self._ensure_os_user()
        self._give_to_os_user(self._base_dir)
        probe = self._run([*self._as_os_user(), "test", "-w", str(self._base_dir)], check=False)
        if probe.returncode != 0:
            raise PostgresError(
                f"OS user {self._os_user!r} cannot write {self._base_dir}: a parent dir is not "
                "traversable by it; use a base dir under /tmp (the default) or fix permissions"
            )

    def _initdb(self) -> None:
        self._pg(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'xiezuo.conf'\n")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            result = self._run(
                [
                    str(self._bin("pg_isready")),
                    "-q",
                    "-h",
                    LOOPBACK,
                    "-p",
                    str(self.port),
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                    "-t",
                    "2",
                ],
                check=False,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL on {LOOPBACK}:{self.port} not ready after "
                    f"{self.start_timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def _server_running(self) -> bool:
        if self._bindir is None or self._base_dir is None or not self.data_dir.exists():
            return False
        return self._pg("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def _stop_at_exit(self) -> None:
        """Stop a server whose owner forgot to, so no postgres outlives the interpreter."""
        with contextlib.suppress(Exception):
            self.stop()

    def _bin(self, name: str) -> Path:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir / name

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a server-side tool, as the unprivileged OS user when we are root."""
        return self._run([*self._as_os_user(), str(self._bin(tool)), *args], check=check)

    def _run(self, cmd: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        # cwd inside the base dir: the OS user may not be allowed into the caller's cwd.
        cwd = self._base_dir if self._base_dir is not None and self._base_dir.exists() else None
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
        if check and result.returncode != 0:
            raise PostgresError(
                f"{shlex.join(cmd)} failed ({result.returncode}):\n"
                f"{(result.stdout + result.stderr).strip()}"
            )
        return result

    def _as_os_user(self) -> list[str]:
        if not _is_root():
            return []
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresError("running as root needs `runuser` (util-linux) to drop privileges")
        return [runuser, "-u", self._os_user, "--"]

    def _ensure_os_user(self) -> None:
        try:
            pwd.getpwnam(self._os_user)
        except KeyError:
            self._run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    self._os_user,
                ],
                check=True,
            )

    def _give_to_os_user(self, path: Path) -> None:
        if _is_root():
            entry = pwd.getpwnam(self._os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _is_root() -> bool:
    return os.geteuid() == 0
