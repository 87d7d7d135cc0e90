"""``bentoml build`` in a process forked from a warm fork server (``multiprocessing``'s
forkserver, started fresh, never from a process that opened a pickle).

A build in a new interpreter spent 1.2 of its 1.7 s importing BentoML's SDK. The fork server
imports it once; each build runs in a child forked from it, so a build's modules (its
``service.py``, its templates) are its own, as with a new process, and die with it. The child
exits when the process that asked for it does; the fork server, once its children are gone.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from multiprocessing.connection import Connection

import _bentoml_sdk  # type: ignore[import-untyped]  # noqa: F401  (what builds import: kept warm)
import bentoml.bentos

from services.runtime.children import exit_with

PRELOAD = [__name__]


def build(
    context: str, version: str, env: dict[str, str], report: Connection, starter: int
) -> None:
    """The build, in the forked child, for process ``starter`` (it ends with it); a failure is
    reported as the last lines of its trace."""
    exit_with(starter)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(context)
    try:
        from bentoml._internal.configuration import set_quiet_mode

        set_quiet_mode()
        bentoml.bentos.build_bentofile(build_ctx=context, version=version)
    except BaseException:  # reported, then the child exits with 1
        report.send("\n".join(traceback.format_exc().strip().splitlines()[-30:])[-4000:])
        os._exit(1)
    report.send(None)


def forkserver() -> multiprocessing.context.ForkServerContext:
    """The fork server builds are started from (one per process, started on first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context
