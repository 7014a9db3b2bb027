"""Where a request runs: its local pool, or the cloud, within the daily cloud budget.

Direct cloud requests take a budget unit before their credits. A local request whose
pool is backed up may overflow to its cloud fallback: the decision, the budget unit and
the enqueue are one atomic step in Redis (`JobQueue.enqueue_routed`). Such a request is
reserved at the cloud price when the backlog is near the threshold (and refunded the
difference when it is served locally after all), so it can pay for either.

A request that stays local is enqueued unpaid and its credits are reserved while a
dispatcher starts it: its output is held in Redis until the reservation commits
(`JobQueue.release`), or dropped unseen if it fails (`JobQueue.refuse`, then 402). An
account whose last reservation here failed is reserved first instead, so an account
without credits does not start jobs it cannot pay for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask

from broker.admission import Admission, AuthEntryChanged
from broker.auth_cache import AuthProof
from broker.budget import BudgetDay, CloudBudget, budget_day
from broker.concurrency import AccountSlots
from broker.queue import JobQueue, QueueFull
from broker.settlements import SettlementStream
from portal import ratelimit
from portal.chat.relay import ChatRelay, Enqueue, NothingReserved, queue_unavailable, unserved
from portal.chat.service import (
    Admissible,
    ChargeUnconfirmed,
    cloud_variant,
    new_job,
    reserve_credits,
)
from portal.config import PortalSettings
from portal.exceptions import GatewayError, PaymentRequired, RateLimited, ServiceUnavailable
from portal.keys.service import Caller
from schema import cloud_budget
from schema.messages import ChatJob, Pool
from schema.openai import ChatCompletionRequest
from schema.reservations import CreditReservations

log = logging.getLogger(__name__)


class NearThreshold(Exception):
    """Admitted, but not enqueued: the local backlog is within one waiter of the failover
    threshold, so the request is placed as one that may overflow."""

    def __init__(self, backlog: int) -> None:
        super().__init__(f"backlog {backlog}")
        self.backlog = backlog


# Accounts remembered as short of credits, per process; forgotten all at once past this.
SHORT_OF_CREDITS_REMEMBERED = 10_000


@dataclass(frozen=True)
class Pending:
    """A chat request being placed: who asks, for what, where it may run, and the HTTP
    request it came in (for the rate-limit headers and the disconnect check)."""

    caller: Caller
    body: ChatCompletionRequest
    admissible: Admissible
    request: Request


def failover_refused(header: str | None) -> bool:
    """The caller's `x-resayil-failover` header says: stay local, wait if need be."""
    return (header or "").strip().lower() in {"off", "false", "0", "no"}


class Placement:
    def __init__(
        self,
        *,
        settings: PortalSettings,
        sessions: sessionmaker[Session],
        reservations: CreditReservations,
        admission: Admission,
        queue: JobQueue,
        budget: CloudBudget,
        relay: ChatRelay,
        slots: AccountSlots,
        settlements: SettlementStream,
    ) -> None:
        self.slots = slots
        self.settlements = settlements
        self.settings = settings
        self.sessions = sessions
        self.reservations = reservations
        self.admission = admission
        self.queue = queue
        self.budget = budget
        self.relay = relay
        self._short_of_credits: set[int] = set()

    def today(self) -> BudgetDay:
        return budget_day(datetime.now(UTC), self.settings.budget_timezone)

    async def run(
        self,
        pending: Pending,
        *,
        failover_header: str | None = None,
        proof: AuthProof | None = None,
    ) -> Response:
        """Place the request if the account's rate limit lets it in (else 429).

        The check of the caller's cached entry (`proof`: `AuthEntryChanged` if it no
        longer holds, before anything counts), the rate limit and the queue reading the
        placement starts from are one round trip to Redis; for a request that stays
        local, the enqueue is part of that round trip too.
        """
        caller, admissible = pending.caller, pending.admissible
        pool = admissible.model.pool
        overflowable = (
            pool == "local"
            and admissible.fallback is not None
            and self.settings.failover_enabled
            and not failover_refused(failover_header)
        )
        cap = self.settings.max_concurrent_per_account
        # Local unless its backlog is near the threshold: it cannot overflow for the price
        # it would be reserved at (the cloud's is higher), so it is enqueued on admission.
        if (
            pool == "local"
            and cap <= 0
            and (not overflowable or admissible.fallback_price > admissible.price)
            and self._paid_later(caller)
        ):
            return await self._enqueued_on_admission(pending, overflowable, proof)
        # Overflowable: how many wait for a local slot. Otherwise: how many are queued.
        decision, waiting = await self.admission.admit(
            caller.account_id,
            caller.requests_per_minute,
            pool,
            backlog=overflowable,
            proof=proof,
        )
        ratelimit.enforce(pending.request, decision)
        if cap <= 0:
            return await self._place(pending, overflowable, waiting)
        token = uuid.uuid4().hex
        if not await self.slots.acquire(caller.account_id, token, cap):
            raise RateLimited(
                f"Too many concurrent requests: at most {cap} at a time for this account.",
                code="too_many_concurrent_requests",
                headers={"retry-after": "1"},
            )
        try:
            response = await self._place(pending, overflowable, waiting)
        except BaseException:
            await self.slots.release(caller.account_id, token)
            raise
        # Released once the response is fully sent (entries also expire on their own).
        response.background = BackgroundTask(self.slots.release, caller.account_id, token)
        return response

    async def _enqueued_on_admission(
        self, pending: Pending, overflowable: bool, proof: AuthProof | None
    ) -> Response:
        """Admitted and enqueued unpaid in one step, then paid for while it starts; one
        whose backlog turns out near the failover threshold is placed as overflowable."""
        job = self._new_job(pending)

        async def admit_and_enqueue() -> ChatJob:
            try:
                admitted = await self.admission.admit_and_enqueue(
                    job,
                    self.queue,
                    limit=pending.caller.requests_per_minute,
                    proof=proof,
                    near_threshold=self.settings.failover_backlog if overflowable else None,
                    max_queued=self.settings.max_queued_jobs,
                )
            except AuthEntryChanged as changed:
                raise NothingReserved(changed) from None
            ratelimit.enforce(pending.request, admitted.decision)
            if admitted.outcome == "full":
                raise await self._full("local", admitted.load)
            if admitted.outcome == "near":
                raise NothingReserved(NearThreshold(admitted.load))
            return job

        try:
            return await self.relay.respond(
                job, pending.request, self._paid_while_placed(job, admit_and_enqueue)
            )
        except NearThreshold as near:
            return await self._overflowable(pending, backlog=near.backlog)

    async def _place(self, pending: Pending, overflowable: bool, waiting: int) -> Response:
        if overflowable:
            # Capped inside the routed enqueue: a full local queue may still overflow.
            return await self._overflowable(pending, backlog=waiting)
        pool = pending.admissible.model.pool
        if waiting >= self.settings.max_queued_jobs:
            raise await self._full(pool, waiting)
        if pool == "cloud":
            return await self._cloud(pending)
        request = pending.request
        if not self._paid_later(pending.caller):
            return await self.relay.respond(await self._reserve(pending), request)
        job = self._new_job(pending)

        async def enqueue_unpaid() -> ChatJob:
            await self.queue.enqueue(job, unpaid=True)
            return job

        return await self.relay.respond(job, request, self._paid_while_placed(job, enqueue_unpaid))

    async def _full(self, pool: Pool, waiting: int) -> ServiceUnavailable:
        """The pool's queue is at its cap: when to come back, from the observed service rate."""
        rate = await self.queue.service_rate(pool)
        wait_s = min(3600, math.ceil((waiting + 1) / rate)) if rate > 0 else 30
        return ServiceUnavailable(
            f"The service is at capacity ({waiting} requests waiting). "
            f"Please retry in about {wait_s} s.",
            code="queue_full",
            # The openai client honours Retry-After up to 60 s; past that it would retry
            # on its own short backoff and deepen the overload, so it is told not to.
            headers={"retry-after": str(wait_s), "x-should-retry": str(wait_s <= 60).lower()},
        )

    async def _cloud(self, pending: Pending) -> Response:
        day = self.today()
        count = await self.budget.take(day.day, self.settings.cloud_daily_cap)
        if count is None:
            raise self._exhausted(day)
        try:
            job = await self._reserve(pending)
        except GatewayError:  # no credits, or no answer from the database
            await self.budget.give_back(day.day)
            raise
        self._record_take(day.day, count)
        job = job.model_copy(update={"budget_day": day.day})
        return await self.relay.respond(job, pending.request)

    async def _overflowable(self, pending: Pending, *, backlog: int) -> Response:
        admissible, request = pending.admissible, pending.request
        assert admissible.fallback is not None
        # One waiter short of overflowing: reserve the cloud price in case it does.
        near = backlog + 2 > self.settings.failover_backlog
        job: ChatJob | None = None
        if near and admissible.fallback_price > admissible.price:
            try:
                job = await self._reserve(pending, admissible.fallback_price)
            except PaymentRequired:
                job = None  # cannot pay for the cloud: wait locally
        can_overflow = job is not None or admissible.fallback_price <= admissible.price
        # Local for sure (it cannot overflow): reserved while it starts, as any local job.
        unpaid = job is None and not can_overflow and self._paid_later(pending.caller)
        if job is None:
            job = self._new_job(pending)
            if not unpaid:
                await self._reserve_credits(job)
        day = self.today()
        cloud = cloud_variant(job, admissible.fallback, admissible.fallback_price, day.day)

        async def enqueue() -> ChatJob:
            for _ in range(2):
                try:
                    placed = await self.queue.enqueue_routed(
                        job,
                        cloud,
                        backlog_threshold=self.settings.failover_backlog,
                        budget_cap=self.settings.cloud_daily_cap,
                        failover_allowed=can_overflow,
                        max_local_queued=self.settings.max_queued_jobs,
                        unpaid=unpaid,
                    )
                except QueueFull:
                    raise await self._full("local", await self.queue.queued("local")) from None
                if placed is None:
                    await self.budget.restore(day.day)
                    continue
                chosen, count = placed
                if count:
                    self._record_take(day.day, count)
                return chosen
            raise RuntimeError("the cloud budget counter could not be restored")

        if unpaid:
            return await self.relay.respond(job, request, self._paid_while_placed(job, enqueue))
        return await self.relay.respond(job, request, enqueue)

    def _paid_while_placed(self, job: ChatJob, enqueue_unpaid: Enqueue) -> Enqueue:
        """Enqueue the job unpaid, reserve its credits meanwhile, then release it; a
        request refused before its credits are reserved has nothing to settle."""

        async def enqueue() -> ChatJob:
            try:
                placed = await enqueue_unpaid()
            except NothingReserved:
                raise
            except GatewayError as error:
                raise NothingReserved(error) from error
            except Exception as error:
                raise NothingReserved(queue_unavailable()) from error
            try:
                await self._reserve_credits(placed)
            except GatewayError as error:
                with contextlib.suppress(Exception):  # if Redis fails too, it is never paid
                    await self.queue.refuse(placed)
                raise NothingReserved(error) from error
            if not await self.queue.release(placed):
                raise RuntimeError(f"job {placed.id} vanished before its release")
            return placed

        return enqueue

    def _new_job(self, pending: Pending, price: int | None = None) -> ChatJob:
        return new_job(
            caller=pending.caller,
            request=pending.body,
            admissible=pending.admissible,
            reply_to=self.relay.hub.channel,
            price=price,
        )

    async def _reserve(self, pending: Pending, price: int | None = None) -> ChatJob:
        """A job whose credits are reserved before it is enqueued."""
        job = self._new_job(pending, price)
        await self._reserve_credits(job)
        return job

    async def _reserve_credits(self, job: ChatJob) -> None:
        try:
            await reserve_credits(reservations=self.reservations, settings=self.settings, job=job)
        except ChargeUnconfirmed:
            await self._settle_unconfirmed(job)
            raise
        except PaymentRequired:
            if len(self._short_of_credits) >= SHORT_OF_CREDITS_REMEMBERED:
                self._short_of_credits.clear()
            self._short_of_credits.add(job.account_id)
            raise
        self._short_of_credits.discard(job.account_id)

    async def _settle_unconfirmed(self, job: ChatJob) -> None:
        """Settle a job whose reservation went unanswered, through Redis (the database is
        not answering): the settler refunds the reservation if it was made after all."""
        settlement = unserved(job, code=ChargeUnconfirmed.code, reservation_unconfirmed=True)
        try:
            await self.settlements.push(settlement)
        except Exception:
            log.exception("request %s: its unconfirmed reservation could not be settled", job.id)

    def _paid_later(self, caller: Caller) -> bool:
        """Whether the caller's local request may start before its credits are reserved:
        yes, unless its account's last reservation here failed."""
        return caller.account_id not in self._short_of_credits

    def _record_take(self, day: str, count: int) -> None:
        """Persist the day's count (the high-water mark a Redis restart starts from) and
        raise the 80% and 100% alerts, in the background: the request neither waits for
        this bookkeeping nor fails with it (Redis holds the count that decides)."""
        cap = self.settings.cloud_daily_cap

        def write() -> None:
            with self.sessions() as session, session.begin():
                cloud_budget.persist_used(session, day=day, used=count)
                kind = cloud_budget.alert_for(count, cap)
                if kind is not None:
                    message = f"Cloud budget for {day}: {count} of {cap} requests used."
                    cloud_budget.record_alert(session, kind=kind, day=day, message=message)

        async def record() -> None:
            try:
                await anyio.to_thread.run_sync(write)
            except Exception:
                log.exception("the cloud budget's count %d for %s was not persisted", count, day)

        self.relay.background.spawn(record())

    def _exhausted(self, day: BudgetDay) -> ServiceUnavailable:
        return ServiceUnavailable(
            "Today's cloud capacity is used up; cloud models are available again tomorrow "
            f"({self.settings.budget_timezone}).",
            code="cloud_budget_exhausted",
            headers={"retry-after": str(day.seconds_left), "x-should-retry": "false"},
        )
