"""The real system for end-to-end tests: simulator, api and dispatcher processes
against real Redis and a real database, driven over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from broker import auth_cache
from portal.accounts.service import create_user
from portal.keys.service import create_key
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import Account, CreditEntry, UsageRecord
from simulator.myfatoorah.config import MyFatoorahConfig
from simulator.myfatoorah.harness import MyFatoorahDouble
from tests.phones import unused_phone
from tests.services import RedisServer, free_port

READY_TIMEOUT = 30.0


def _wait_http(url: str, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url}: {log.read_text()[-3000:]}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Account_:
    account_id: int
    user_id: int
    key: str
    key_id: int
    email: str


@dataclass
class Stack:
    database_url: str
    redis_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    dispatchers: list[Process] = field(default_factory=list)
    api_url: str = ""
    sim_url: str = ""
    engine: Engine | None = None
    sessions: sessionmaker[Session] | None = None
    redis_server: RedisServer | None = None  # set by the fixture that started it
    # MyFatoorah's double, in this process: tests reach its state directly.
    myfatoorah: MyFatoorahDouble | None = None
    _counter: int = 0

    # -- processes -------------------------------------------------------------
    def start(self, *, local_slots: int = 4) -> None:
        upgrade(self.database_url)
        self.engine = make_engine(self.database_url)
        self.sessions = make_session_factory(self.engine)
        sim_port, api_port = free_port(), free_port()
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.myfatoorah = MyFatoorahDouble(
            MyFatoorahConfig(
                token=f"mf-{uuid.uuid4().hex}",
                webhook_url=f"{self.api_url}/api/billing/webhook",
                webhook_secret=f"whsec-{uuid.uuid4().hex}",
                webhook_version=2,
            )
        )
        self.myfatoorah.start()
        mf = self.myfatoorah.state.config
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "OLLAMA_URL": self.sim_url,
            "LOCAL_SLOTS": str(local_slots),
            "CATALOG_TTL_S": "0",
            "LEASE_MS": "1500",
            "PUBLIC_BASE_URL": self.api_url,
            "DRAIN_TIMEOUT_S": "5",
            # Tests share one day's cloud budget: those that test the cap start an api
            # of their own with a cap just above today's count.
            "CLOUD_DAILY_CAP": "1000000",
            # Every test logs in from 127.0.0.1: the per-address throttle is tested on
            # an api of its own (`extra_api`); the per-account one applies here.
            "LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
            "MYFATOORAH_BASE_URL": self.myfatoorah.url,
            "MYFATOORAH_TOKEN": mf.token,
            "MYFATOORAH_WEBHOOK_SECRET": mf.webhook_secret,
            "MYFATOORAH_TIMEOUT_S": "5",
        }
        sim = self._spawn("sim", ["sim-ollama", "--port", str(sim_port), "--num-parallel", "64"])
        _wait_http(f"{self.sim_url}/api/version", "simulator", sim.popen, sim.log)
        self.start_dispatcher()
        api = self._spawn("api", ["api", "--port", str(api_port)])
        _wait_http(f"{self.api_url}/healthz", "api", api.popen, api.log)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        log = self.workdir / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", "resayil", *args],
                env=env or self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_dispatcher(self, **overrides: str) -> Process:
        env = {**self.env, **overrides}
        process = self._spawn("dispatcher", ["dispatcher"], env)
        self.dispatchers.append(process)
        time.sleep(0.3)  # let it subscribe to cancels before work arrives
        return process

    @contextlib.contextmanager
    def extra_api(self, name: str = "api-extra", **overrides: str) -> Iterator[str]:
        """Another api process on the same Redis and database, with its own settings."""
        port = free_port()
        process = self._spawn(name, ["api", "--port", str(port)], {**self.env, **overrides})
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(f"{url}/healthz", name, process.popen, process.log)
            yield url
        finally:
            process.stop()
            self.processes.remove(process)

    def api_log(self) -> str:
        return "".join(p.log.read_text() for p in self.processes if p.name == "api")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.myfatoorah is not None:
            self.myfatoorah.stop()
        if self.engine is not None:
            self.engine.dispose()

    # -- simulator -------------------------------------------------------------
    def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{self.sim_url}/_sim/stats").json()
        return stats

    def sim_reset(self) -> None:
        httpx.post(f"{self.sim_url}/_sim/reset")

    def sim_config(self, **config: Any) -> None:
        httpx.post(f"{self.sim_url}/_sim/config", json=config).raise_for_status()

    # -- data ------------------------------------------------------------------
    def revoke_key(self, digest: str) -> None:
        """What deleting a key does to the api's auth cache (see broker.auth_cache)."""
        with redis.Redis.from_url(self.redis_url) as client:
            auth_cache.revoke_key(client, digest)

    def revoke_account(self, account_id: int) -> None:
        """What changing an account does to the api's auth cache (see broker.auth_cache)."""
        with redis.Redis.from_url(self.redis_url) as client:
            auth_cache.revoke_account(client, account_id)

    def session(self) -> Session:
        assert self.sessions is not None
        return self.sessions()

    def new_account(self, *, plan: str | None = "pro", credits: int = 100) -> Account_:
        self._counter += 1
        stamp = f"{os.getpid()}{self._counter:04d}{int(time.time() * 1000) % 100000:05d}"
        email = f"user{stamp}@example.com"
        phone = unused_phone()
        with self.session() as session, session.begin():
            registered = create_user(
                session,
                email=email,
                phone=phone,
                password="correct horse battery staple",
                plan_code=plan or "basic",
                credits=credits,
            )
            if plan is None:
                session.get_one(Account, registered.account_id).plan_id = None
            key = create_key(
                session, account_id=registered.account_id, user_id=registered.user_id, label="test"
            )
        return Account_(registered.account_id, registered.user_id, key.key, key.id, email)

    def balance(self, account_id: int) -> int:
        with self.session() as session:
            return session.get_one(Account, account_id).credit_balance

    def ledger_sum(self, account_id: int) -> int:
        with self.session() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                    CreditEntry.account_id == account_id
                )
            )
            return int(total or 0)

    def usage(self, account_id: int) -> list[UsageRecord]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(UsageRecord)
                    .where(UsageRecord.account_id == account_id)
                    .order_by(UsageRecord.id)
                )
            )

    def wait_usage(self, account_id: int, count: int, timeout: float = 10) -> list[UsageRecord]:
        """Settlement is asynchronous (a Redis stream read by the dispatchers)."""
        deadline = time.monotonic() + timeout
        rows = self.usage(account_id)
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = self.usage(account_id)
        return rows
