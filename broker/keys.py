"""Every Redis key and channel name, from one place."""

from __future__ import annotations

PREFIX = "rs"

SETTLEMENTS = f"{PREFIX}:settlements"
SETTLERS_GROUP = "settlers"
# Rung (a list with at most one item) with every settlement that gives credits back.
REFUND_BELL = f"{PREFIX}:settlements:refund-bell"
CANCELS = f"{PREFIX}:cancels"


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def held(job_id: str) -> str:
    """The output of a job whose credits are not reserved yet (see scripts.RELEASE)."""
    return f"{PREFIX}:held:{job_id}"


def job_prefix() -> str:
    return f"{PREFIX}:job:"


def replies(instance: str) -> str:
    """The channel one api process receives all its jobs' events on."""
    return f"{PREFIX}:replies:{instance}"


def queue(pool: str) -> str:
    return f"{PREFIX}:queue:{pool}"


def inflight(pool: str) -> str:
    return f"{PREFIX}:inflight:{pool}"


def wake(pool: str) -> str:
    return f"{PREFIX}:wake:{pool}"


def rate_window(account_id: int) -> str:
    return f"{PREFIX}:rate:{account_id}"


def cloud_budget(day: str) -> str:
    return f"{PREFIX}:cloud-budget:{day}"


def served_per_second(pool: str) -> str:
    """Prefix of the per-second counters of finished jobs (the second is appended)."""
    return f"{PREFIX}:served:{pool}:"


def account_running(account_id: int) -> str:
    return f"{PREFIX}:running:{account_id}"


def last_score(pool: str, account_id: int) -> str:
    """The score of the account's latest job in the pool's queue (fair queuing)."""
    return f"{PREFIX}:last-score:{pool}:{account_id}"


def waiting(pool: str, account_id: int) -> str:
    """How many of the account's jobs wait in the pool's queue (fair queuing)."""
    return f"{PREFIX}:waiting:{pool}:{account_id}"


def slots(pool: str) -> str:
    """The pool's slot count, as the dispatchers are configured."""
    return f"{PREFIX}:slots:{pool}"


def lease(pool: str) -> str:
    """The lease (ms) the pool's dispatchers take on a job, as they are configured."""
    return f"{PREFIX}:lease:{pool}"


def listeners(pool: str) -> str:
    """Dispatchers waiting for the pool's work, each until a time (ms): zset."""
    return f"{PREFIX}:listeners:{pool}"


def handoff(pool: str) -> str:
    """Jobs claimed at their enqueue for whichever waiting dispatcher pops them first."""
    return f"{PREFIX}:handoff:{pool}"
