"""`resayil run`: the whole system on one machine, on embedded defaults.

Redis: REDIS_URL if it answers, else a `redis-server` started here (data in var/).
Database: DATABASE_URL (default SQLite in var/), migrated first.
Ollama: OLLAMA_URL if it answers, else the bundled simulator, announced loudly.
MyFatoorah: MYFATOORAH_TOKEN if set, else the local MyFatoorah double with a fresh
random token and webhook secret, announced loudly (payments are then pretend).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
from redis import Redis
from redis.exceptions import RedisError

from portal.config import load_settings
from schema.migrate import upgrade

VAR = Path("var")


def _redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except RedisError:
        return False


def _http_status(url: str) -> int | None:
    """The status a GET gets, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _ollama_answers(url: str) -> bool:
    return _http_status(f"{url.rstrip('/')}/api/version") == 200


def _wait_for(check: object, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within {timeout_s:.0f} s")


def _start_redis(url: str, children: list[subprocess.Popen[bytes]]) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run `make run` (it installs it)")
    port = urlparse(url).port or 6379
    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    children.append(
        subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(VAR / "redis"),
                "--appendonly",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
        )
    )
    _wait_for(lambda: _redis_answers(url), "redis-server")


def _banner(text: str) -> None:
    line = "=" * 78
    print(f"\n{line}\n{text}\n{line}\n", flush=True)


def _start_myfatoorah_double(
    env: dict[str, str], me: list[str], children: list[subprocess.Popen[bytes]]
) -> None:
    """Payments against the local double: its own token and secret, made up now."""
    port = int(env.get("MYFATOORAH_SIM_PORT", "8010"))
    url = f"http://127.0.0.1:{port}"
    env["MYFATOORAH_BASE_URL"] = url
    env["MYFATOORAH_TOKEN"] = secrets.token_urlsafe(24)
    env["MYFATOORAH_WEBHOOK_SECRET"] = secrets.token_urlsafe(24)
    command = [
        *me,
        "sim-myfatoorah",
        "--port",
        str(port),
        "--token",
        env["MYFATOORAH_TOKEN"],
        "--webhook-url",
        f"{env['PUBLIC_BASE_URL'].rstrip('/')}/api/billing/webhook",
        "--webhook-secret",
        env["MYFATOORAH_WEBHOOK_SECRET"],
    ]
    children.append(subprocess.Popen(command, env=env))  # noqa: S603 (fixed argv)
    _wait_for(lambda: _http_status(f"{url}/pay/0") is not None, "the MyFatoorah double")
    _banner(
        "NO MYFATOORAH_TOKEN: PAYMENTS GO TO THE LOCAL MYFATOORAH DOUBLE AT "
        f"{url}.\nNothing is charged. Test cards: 5123450000000008 pays, "
        "4000000000000004 is declined for insufficient funds."
    )


def run_all(*, host: str, port: int) -> None:
    settings = load_settings()
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", settings.database_url)
    env.setdefault("REDIS_URL", settings.redis_url)
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    ollama_url = env.get("OLLAMA_URL", "http://127.0.0.1:11434")
    children: list[subprocess.Popen[bytes]] = []
    me = [sys.executable, "-m", "resayil"]
    # `docker stop`, systemd and `kill` send SIGTERM: stop the children as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not _redis_answers(env["REDIS_URL"]):
            _start_redis(env["REDIS_URL"], children)
        upgrade(env["DATABASE_URL"])
        if not _ollama_answers(ollama_url):
            sim_port = urlparse(ollama_url).port or 11434
            children.append(subprocess.Popen([*me, "sim-ollama", "--port", str(sim_port)], env=env))  # noqa: S603
            _wait_for(lambda: _ollama_answers(ollama_url), "the Ollama simulator")
            _banner(
                f"NO OLLAMA ANSWERED AT {ollama_url}: USING THE BUNDLED OLLAMA SIMULATOR.\n"
                "Answers are synthetic. Set OLLAMA_URL to a real Ollama for real models."
            )
        env["OLLAMA_URL"] = ollama_url
        if not env.get("MYFATOORAH_TOKEN"):
            _start_myfatoorah_double(env, me, children)
        for name in ("dispatcher", "worker", "scheduler"):
            children.append(subprocess.Popen([*me, name], env=env))  # noqa: S603
        api = [*me, "api", "--host", host, "--port", str(port)]
        children.append(subprocess.Popen(api, env=env))  # noqa: S603
        _banner(
            f"Resayil is up: http://{host}:{port}  (OpenAPI docs: /docs)\n"
            "Create a user and a key:\n"
            "  .venv/bin/resayil users create --email you@example.com --phone +96550000000 "
            "--password 'choose-one' --plan pro --credits 100\n"
            "  .venv/bin/resayil keys create --email you@example.com --label first"
        )
        _wait_any(children)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(children)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_any(children: list[subprocess.Popen[bytes]]) -> None:
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    failed = [c.args for c in children if c.poll() not in (None, 0)]
    if failed:
        print(f"a process stopped: {failed}", file=sys.stderr)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            child.kill()
