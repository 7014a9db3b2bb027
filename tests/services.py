"""Real, throwaway Redis and PostgreSQL servers for a test session.

Each server runs from its own temporary directory on a free loopback port and is
removed, directory and all, by ``stop()`` (also registered with ``atexit``, so an
interrupted session does not leave servers behind)::

    redis = start_redis()                    # redis://127.0.0.1:PORT/0
    redis.restart()                          # same port; data kept only if persistent
    postgres = start_postgres()              # postgresql+psycopg://postgres@127.0.0.1:PORT/resayil_test
    ...
    postgres.stop(); redis.stop()

Environment overrides: when ``TEST_REDIS_URL`` or ``TEST_DATABASE_URL`` is set,
``start_redis()`` / ``start_postgres()`` start nothing and hand back that server
instead (``external`` is then true, ``stop()`` leaves it running, and ``restart()`` /
``kill()`` raise ``ServiceError``). A ``postgresql://`` or ``postgres://`` URL is given
the ``+psycopg`` driver. Tests that must own their server (to restart or kill it)
pass ``allow_external=False``.

Binaries: ``redis-server`` from ``PATH``; PostgreSQL's ``initdb``/``pg_ctl`` from the
newest ``/usr/lib/postgresql/*/bin``, else ``pg_config --bindir``, else ``PATH``.
``scripts/ensure-system-deps.sh redis postgres`` installs both. PostgreSQL refuses to
run as root, so as root every PostgreSQL command runs as the ``postgres`` OS user
through ``runuser``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_CHARS = 4000
POSTGRES_OS_USER = "postgres"
POSTGRES_SUPERUSER = "postgres"
DEFAULT_DATABASE = "resayil_test"


class ServiceError(RuntimeError):
    """A test server could not be found, started, stopped or restarted."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return text[-LOG_TAIL_CHARS:] or "(log is empty)"


def _wait_until(ready: Callable[[], bool], *, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{what} not ready after {timeout:.0f} s; log {log}:\n{_log_tail(log)}"
            )
        time.sleep(0.05)


class _Server:
    """``with start_redis() as redis: ...`` stops the server on the way out."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- Redis -----------------------------------------------------------------------------


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError(
            "redis-server not found; run `bash scripts/ensure-system-deps.sh redis` "
            "or set TEST_REDIS_URL"
        )
    return binary


def _redis_answers_ping(port: int) -> bool:
    """True once the server answers PING with PONG (not -LOADING while reading its AOF)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer(_Server):
    """A ``redis-server`` child process, or an external server named by ``TEST_REDIS_URL``.

    ``persistent=True`` turns on the append-only file with ``appendfsync always``, so
    data survives ``restart()`` and even ``kill()`` followed by ``restart()``.
    Without it nothing is saved and a restart comes back empty, like a Redis whose
    persistence is off or whose disk was lost.
    """

    port: int
    directory: Path | None
    persistent: bool = False
    external_url: str | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        if self.external_url is not None:
            return self.external_url
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def external(self) -> bool:
        return self.external_url is not None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while this object runs it (None when external)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self._owned_directory() / "redis.log"

    def start(self) -> None:
        """Start the server (on the same port and directory as before, if it ran)."""
        directory = self._owned_directory()
        if self.running:
            return
        with (directory / "redis.log").open("ab") as log:
            self._process = subprocess.Popen(
                self._command(directory),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
                # Own session: a Ctrl-C in the terminal reaches pytest, which then
                # stops the server in order, rather than the server dying first.
                start_new_session=True,
            )
        process = self._process

        def ready() -> bool:
            if process.poll() is not None:
                raise ServiceError(
                    f"redis-server exited with {process.returncode}; "
                    f"log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            return _redis_answers_ping(self.port)

        try:
            _wait_until(ready, what="redis-server", log=self.log_path, timeout=STARTUP_TIMEOUT)
        except ServiceError:
            self._terminate(signal.SIGKILL)
            raise

    def kill(self) -> None:
        """SIGKILL the server: a crash, with no shutdown save. The data directory stays."""
        self._owned_directory()
        self._terminate(signal.SIGKILL)

    def restart(self) -> None:
        """Stop the server cleanly (saving if persistent), then start it on the same port."""
        self._owned_directory()
        self._terminate(signal.SIGTERM)
        self.start()

    def stop(self) -> None:
        """Stop the server and delete its directory. Idempotent; a no-op when external."""
        if self.directory is None:
            return
        self._terminate(signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def _command(self, directory: Path) -> list[str]:
        command = [
            _redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--daemonize", "no",
            "--save", "",
        ]  # fmt: skip
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        return command

    def _owned_directory(self) -> Path:
        if self.external_url is not None:
            raise ServiceError(
                f"Redis at {self.external_url} comes from TEST_REDIS_URL and cannot be "
                "restarted or killed; use start_redis(allow_external=False)"
            )
        if self.directory is None:
            raise ServiceError(f"Redis on port {self.port} was stopped and cannot be reused")
        return self.directory

    def _terminate(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_redis(*, persistent: bool = False, allow_external: bool = True) -> RedisServer:
    """A running Redis: ``TEST_REDIS_URL`` if set and allowed, else a new ``redis-server``."""
    external_url = os.environ.get("TEST_REDIS_URL")
    if allow_external and external_url:
        return RedisServer(
            port=_port_of(external_url, default=6379),
            directory=None,
            persistent=persistent,
            external_url=external_url,
        )
    server = RedisServer(
        port=free_port(),
        directory=Path(tempfile.mkdtemp(prefix="resayil-redis-")),
        persistent=persistent,
    )
    atexit.register(server.stop)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def _port_of(url: str, *, default: int) -> int:
    try:
        return urlsplit(url).port or default
    except ValueError:
        return default


# --- PostgreSQL ------------------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,)
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``, newest major version first."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        pg_config = shutil.which("pg_config")
        if pg_config is not None:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(out))
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise ServiceError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; run "
        "`bash scripts/ensure-system-deps.sh postgres` or set TEST_DATABASE_URL"
    )


def _as_postgres_user(command: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        return list(command)
    return ["runuser", "-u", POSTGRES_OS_USER, "--", *command]


def _run_postgres_tool(command: Sequence[str], *, cwd: Path, what: str, log: Path) -> None:
    result = subprocess.run(
        _as_postgres_user(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT * 2,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"{what} failed with {result.returncode}:\n{result.stdout}{result.stderr}\n"
            f"server log {log}:\n{_log_tail(log)}"
        )


def _normalise_database_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass
class PostgresServer(_Server):
    """A PostgreSQL cluster made by ``initdb`` for this session, or ``TEST_DATABASE_URL``.

    Tuned for tests, not durability: fsync, synchronous_commit and full_page_writes off.
    """

    port: int
    directory: Path | None
    bindir: Path | None = None
    user: str = POSTGRES_SUPERUSER
    database: str = DEFAULT_DATABASE
    external_url: str | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL with the psycopg 3 driver."""
        if self.external_url is not None:
            return self.external_url
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq URL (``postgresql://...``) for psql, pg_dump or psycopg itself."""
        return self.url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def external(self) -> bool:
        return self.external_url is not None

    @property
    def data_directory(self) -> Path:
        return self._owned_directory() / "data"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (None when external or stopped)."""
        if self.directory is None:
            return None
        try:
            return int((self.data_directory / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    @property
    def log_path(self) -> Path:
        return self._owned_directory() / "postgres.log"

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """The server stops answering (SIGSTOP: its connections stay open, as in a hung
        failover) until the block ends."""
        postmaster = self.pid
        if postmaster is None:
            raise ServiceError("only a server of this process's own can be stalled")
        os.kill(postmaster, signal.SIGSTOP)  # first: it forks no new backend meanwhile
        stopped = [postmaster]
        try:
            for pid in _children(postmaster):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def start(self) -> None:
        """Create the cluster and database on first start; start the server."""
        directory = self._owned_directory()
        fresh = not (self.data_directory / "PG_VERSION").exists()
        if fresh:
            self._initdb(directory)
        self._pg_ctl("start", "-l", str(self.log_path), "-t", str(int(STARTUP_TIMEOUT)))
        _wait_until(self._ready, what="PostgreSQL", log=self.log_path, timeout=STARTUP_TIMEOUT)
        if fresh:
            host = ("-h", "127.0.0.1", "-p", str(self.port), "-U", self.user)
            self._tool("createdb", *host, self.database)

    def stop(self) -> None:
        """Stop the server and delete its directory. Idempotent; a no-op when external."""
        if self.directory is None:
            return
        if (self.directory / "data" / "postmaster.pid").exists():
            try:
                self._pg_ctl("stop", "-m", "fast", "-t", str(int(STOP_TIMEOUT)))
            except ServiceError:
                with contextlib.suppress(ServiceError):
                    self._pg_ctl("stop", "-m", "immediate", "-t", str(int(STOP_TIMEOUT)))
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def _initdb(self, directory: Path) -> None:
        self._tool(
            "initdb",
            "-D", str(self.data_directory),
            "-U", self.user,
            "-A", "trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{directory}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "timezone": "'UTC'",
        }
        with (self.data_directory / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/services.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _ready(self) -> bool:
        result = subprocess.run(
            [
                str(self._bindir() / "pg_isready"),
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def _pg_ctl(self, *args: str) -> None:
        self._tool("pg_ctl", "-D", str(self.data_directory), "-w", *args)

    def _tool(self, name: str, *args: str) -> None:
        _run_postgres_tool(
            [str(self._bindir() / name), *args],
            cwd=self._owned_directory(),
            what=name,
            log=self._owned_directory() / "postgres.log",
        )

    def _bindir(self) -> Path:
        if self.bindir is None:
            self.bindir = postgres_bindir()
        return self.bindir

    def _owned_directory(self) -> Path:
        if self.external_url is not None:
            raise ServiceError(f"PostgreSQL at {self.external_url} comes from TEST_DATABASE_URL")
        if self.directory is None:
            raise ServiceError(f"PostgreSQL on port {self.port} was stopped")
        return self.directory


def _make_postgres_directory() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="resayil-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            shutil.rmtree(directory, ignore_errors=True)
            raise ServiceError(
                f"running as root needs the '{POSTGRES_OS_USER}' OS user to run PostgreSQL; "
                "run `bash scripts/ensure-system-deps.sh postgres`"
            ) from None
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    return directory


def _children(parent: int) -> list[int]:
    """The processes whose parent is `parent`, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # pid (comm) state ppid ...: the name may hold spaces, so split after it.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(stat.parent.name))
    return children


def start_postgres(
    *, database: str = DEFAULT_DATABASE, allow_external: bool = True
) -> PostgresServer:
    """A running PostgreSQL with ``database`` created: ``TEST_DATABASE_URL`` if set and
    allowed, else a new cluster in a temporary directory."""
    external_url = os.environ.get("TEST_DATABASE_URL")
    if allow_external and external_url:
        return PostgresServer(
            port=_port_of(external_url, default=5432),
            directory=None,
            external_url=_normalise_database_url(external_url),
        )
    bindir = postgres_bindir()
    server = PostgresServer(
        port=free_port(),
        directory=_make_postgres_directory(),
        bindir=bindir,
        database=database,
    )
    atexit.register(server.stop)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
