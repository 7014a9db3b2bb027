"""The RQ worker and the scheduler that feeds it periodic jobs."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

from redis import Redis
from rq import Queue, Worker

from broker.locks import claim_period
from portal.config import load_settings

log = logging.getLogger(__name__)
QUEUE_NAME = "default"


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_s: int
    path: str  # dotted path: the scheduler never imports job code


PERIODIC = (
    PeriodicJob("reconcile-ledger", 600, "resayil.jobs.reconcile_ledger"),
    PeriodicJob("reconcile-payments", 60, "resayil.jobs.reconcile_payments"),
    PeriodicJob("announce-plan-endings", 600, "resayil.jobs.announce_plan_endings"),
)


def _redis() -> Redis:
    return Redis.from_url(load_settings().redis_url)


def run_worker() -> None:
    redis = _redis()
    Worker([Queue(QUEUE_NAME, connection=redis)], connection=redis).work(with_scheduler=False)


def run_scheduler(tick_s: float = 5.0) -> None:
    redis = _redis()
    queue = Queue(QUEUE_NAME, connection=redis)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("scheduler started with %d periodic jobs", len(PERIODIC))
    while not stop.is_set():
        for job in PERIODIC:
            if claim_period(redis, job.name, job.every_s, time.time()):
                queue.enqueue(job.path, job_timeout=job.every_s)
                log.info("enqueued %s", job.name)
        stop.wait(tick_s)
