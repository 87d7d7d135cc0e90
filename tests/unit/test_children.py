"""A bento build (and its fork server) does not outlive the packager that started it, even one
killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

PARENT = """
import os, sys, time
from services.packager import bento_build
server = bento_build.forkserver()
receive, send = server.Pipe(duplex=False)
args = (sys.argv[1], "1", dict(os.environ), send, os.getpid())
child = server.Process(target=bento_build.build, args=args)
child.start()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_build_is_killed_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    (tmp_path / "bentofile.yaml").write_text('service: "service:Slow"\n')
    started = tmp_path / "started"
    (tmp_path / "service.py").write_text(  # a build that hangs importing the service
        f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.1)
    fork_server = psutil.Process(child_pid).parent()
    assert fork_server is not None
    assert fork_server.pid != parent.pid
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    for pid, what in ((child_pid, "the build"), (fork_server.pid, "the fork server")):
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
            assert time.monotonic() < deadline, f"{what} outlived the process that started it"
            time.sleep(0.05)
