"""A child started with ``dying_with_parent`` does not outlive a parent killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

PARENT = """
import subprocess, sys, time
from services.runtime.children import dying_with_parent
child = subprocess.Popen(dying_with_parent(["sleep", "60"]))
print(child.pid, flush=True)
time.sleep(60)
"""


def test_child_is_killed_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    time.sleep(0.3)  # the shim has exec'd sleep
    assert psutil.Process(child_pid).cmdline()[0] == "sleep"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child_pid) and psutil.Process(child_pid).status() != "zombie":
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
