"""Entry points of the four processes, and `run` which starts them all."""

from __future__ import annotations

import logging
import os

import click

from resayil.heap import freeze_startup_heap

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _logging() -> None:
    """Log lines to stderr at `LOG_LEVEL` (default INFO; DEBUG adds a line per served job)."""
    level = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise click.BadParameter(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}: {level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def api(host: str, port: int) -> None:
    """Serve the HTTP API (OpenAI-compatible /v1, portal, webhooks)."""
    import uvicorn

    from portal.http_protocol import TurnBufferedHttpToolsProtocol
    from portal.main import create_app

    _logging()
    app = create_app()
    freeze_startup_heap()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=TurnBufferedHttpToolsProtocol,
    )


@click.command()
def dispatcher() -> None:
    """Run chat jobs from the Redis queues against Ollama."""
    from dispatcher.__main__ import main as dispatcher_main

    _logging()
    freeze_startup_heap()
    dispatcher_main()


@click.command()
def worker() -> None:
    """Run background jobs (notifications and others) from RQ queues."""
    from resayil.background import run_worker

    _logging()
    run_worker()


@click.command()
def scheduler() -> None:
    """Enqueue periodic jobs."""
    from resayil.background import run_scheduler

    _logging()
    run_scheduler()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def run(host: str, port: int) -> None:
    """Start everything locally on embedded defaults (what `make run` does)."""
    from resayil.supervisor import run_all

    _logging()
    run_all(host=host, port=port)
