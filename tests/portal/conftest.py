from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.portal.people import Member, register
from tests.stack import Stack


@pytest.fixture
def new_member(stack: Stack) -> Iterator[Callable[..., Member]]:
    """Registers users through the API; their HTTP clients are closed at teardown."""
    made: list[Member] = []

    def make(**options: Any) -> Member:
        options.setdefault("api_url", stack.api_url)
        made.append(register(**options))
        return made[-1]

    yield make
    for member in made:
        member.http.close()
