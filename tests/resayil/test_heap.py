"""What a process built at startup is out of the cyclic collector's later passes."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_startup_garbage_is_collected_and_the_rest_frozen() -> None:
    script = textwrap.dedent(
        """
        import gc, weakref
        from resayil.heap import freeze_startup_heap

        class Node:
            pass

        kept = [Node() for _ in range(1000)]
        cycle = Node(); cycle.me = cycle
        garbage = weakref.ref(cycle); del cycle
        freeze_startup_heap()
        seen = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
        print(garbage() is None, any(id(node) in seen for node in kept))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    collected, still_seen = run.stdout.split()
    assert collected == "True"  # the cycle startup left was collected, not frozen
    assert still_seen == "False"  # what startup kept is out of every generation
