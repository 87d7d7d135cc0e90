"""Child processes that must not outlive their parent (Linux: ``PR_SET_PDEATHSIG``).

A service killed with ``kill -9`` cannot clean up; a build it started would run on and race the
redelivered event's build. The child asks the kernel for SIGKILL when its parent dies, then
``exec``s the real command.
"""

from __future__ import annotations

import sys

_SHIM = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]): os._exit(137)\n"  # the parent died before that
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` wrapped so the process is killed when this one dies (as is, off Linux)."""
    if not sys.platform.startswith("linux"):
        return argv
    import os

    return [sys.executable, "-c", _SHIM, str(os.getpid()), *argv]
