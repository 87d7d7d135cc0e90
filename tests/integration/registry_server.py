"""A real image registry for the tests: Debian's ``docker-registry`` with htpasswd logins."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import require

USER, PASSWORD = "mesh", "s3cret-registry"


def needed(tool: str) -> None:
    require(shutil.which(tool) is not None, tool, ".ci/run installs it")


def start_registry(home: Path, bind: str, port: int) -> subprocess.Popen[bytes]:
    """A registry on ``bind:port`` storing under ``home``, answering once it asks for a login."""
    needed("docker-registry")
    needed("htpasswd")
    users = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (home / "htpasswd").write_text(users)
    (home / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {home / 'data'}\n"
        f"http:\n  addr: {bind}:{port}\n"
        f"auth:\n  htpasswd:\n    realm: bentomesh\n    path: {home / 'htpasswd'}\n"
    )
    log = (home / "registry.log").open("wb")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(home / "config.yml")], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:
                return process
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, (home / "registry.log").read_text()
        time.sleep(0.2)
