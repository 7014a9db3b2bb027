"""Phone numbers for the accounts the tests register: valid, and none twice in a run.

Random numbers would collide (a run registers a few thousand accounts among a million
numbers: the birthday problem makes a repeat likely in most runs), so they are counted
from a random start instead.
"""

from __future__ import annotations

import itertools
import random

# +965 50xxxxxx: a Kuwaiti mobile range, valid for any six digits.
_numbers = itertools.count(random.randrange(1_000_000))


def unused_phone() -> str:
    return f"+96550{next(_numbers) % 1_000_000:06d}"
