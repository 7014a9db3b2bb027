"""The cyclic garbage collector, told that what a process built at startup stays.

A full collection walks every object the collector tracks: in the api about 200,000
after startup (modules, the app, SQLAlchemy's and pydantic's structures), 80 to 110 ms
a time on this machine, and the bench's 4,000 requests set off two in the api and two
in the dispatcher. Those objects live as long as the process, so they are moved out of
the collector's sight (`gc.freeze`) once startup is done; what requests allocate is
collected as before. Measured (`bench --scenario ab --concurrency 32`): the api's CPU per
request 1.72 -> 1.56 and 1.27 -> 1.19 ms, and no more 100 ms pauses.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect what startup left as garbage, then keep the survivors out of every later
    collection. Call once, in a long-running process, when its startup is done."""
    gc.collect()
    gc.freeze()
