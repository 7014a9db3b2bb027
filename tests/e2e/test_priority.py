"""Enterprise overtakes Basic through the whole path (the broker tests cover aging)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from contextlib import ExitStack

import httpx

from schema.models import Account
from tests.e2e.helpers import body, post, unlimited, wait_backlog
from tests.stack import Stack


def test_enterprise_jobs_overtake_a_waiting_basic_job(stack: Stack) -> None:
    basic = stack.new_account(plan="basic", credits=10)
    enterprise = stack.new_account(plan="enterprise", credits=10)
    with stack.session() as session, session.begin():
        for account in (basic, enterprise):
            session.get_one(Account, account.account_id).rpm_override = 0
    busy = unlimited(stack)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool,
        ExitStack() as streams,
    ):
        client = streams.enter_context(httpx.Client(timeout=60))
        readers: list[Iterator[str]] = []
        # Four slow streams that end one after another, freeing one slot at a time.
        for tokens in (60, 90, 120, 150):
            response = streams.enter_context(
                client.stream(
                    "POST",
                    f"{stack.api_url}/v1/chat/completions",
                    json=body(f"[[sim:tokens={tokens}]] [[sim:delay_ms=10]]", stream=True),
                    headers={"Authorization": f"Bearer {busy.key}", "x-resayil-failover": "off"},
                )
            )
            readers.append(response.iter_lines())
            next(readers[-1])
        first = pool.submit(post, stack.api_url, basic.key, body("basic, first in line"))
        wait_backlog(stack, 1)
        later = [
            pool.submit(
                post,
                stack.api_url,
                enterprise.key,
                body("enterprise"),
                **{"x-resayil-failover": "off"},
            )
            for _ in range(3)
        ]
        wait_backlog(stack, 4)
        for reader in readers:
            for _ in reader:  # drain: the slots free as the streams end
                pass
        responses = [f.result(timeout=30) for f in [first, *later]]
    assert all(r.status_code == 200 for r in responses)
    waits = [int(r.headers["x-resayil-queue-wait-ms"]) for r in responses]
    basic_wait, enterprise_waits = waits[0], waits[1:]
    # The Basic job was queued first, yet every Enterprise job started before it.
    assert max(enterprise_waits) < basic_wait, waits
