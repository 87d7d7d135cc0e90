"""Child processes that must not outlive the process they work for.

A service killed with ``kill -9`` cannot clean up; a build it started would run on and race the
redelivered event's build. A child calls :func:`exit_with` with that process's id first thing.
"""

from __future__ import annotations

import os
import select
import threading


def exit_with(pid: int) -> None:
    """Exit this process (code 137) as soon as process ``pid`` has ended, even by ``kill -9``.

    A thread waits on a pidfd: not the parent (``PR_SET_PDEATHSIG``), because a child forked by
    ``multiprocessing``'s fork server has the fork server as its parent, which outlives the
    process that asked for the child for as long as the child runs."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(137)

    def wait() -> None:
        select.select([handle], [], [])
        os._exit(137)

    threading.Thread(target=wait, name=f"exit-with-{pid}", daemon=True).start()
