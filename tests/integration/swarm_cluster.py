"""A Docker Swarm of two hosts on one machine, for the tests.

The second host is a second ``dockerd`` in a network namespace of its own, joined to this one by
a veth pair: its own data root, exec root, socket, iptables rules and ``/sys`` view (a fresh
sysfs, so its bridges are its own; the cgroup hierarchies bind-mounted back). The machine's
engine is the manager, the second engine joins as a worker. Both pull images from one registry
on the host: the second host reaches it through a forwarder on its own loopback, so both engines
name it ``127.0.0.1:PORT``, which Docker trusts over plain HTTP.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

NETNS = "bentomesh-h2"
SUBNET = "10.231.7"
MANAGER_ADDR = f"{SUBNET}.1"
WORKER_ADDR = f"{SUBNET}.2"

_FORWARD = """
import asyncio, sys
port, host = int(sys.argv[1]), sys.argv[2]
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    finally:
        w.close()
async def handle(r, w):
    ur, uw = await asyncio.open_connection(host, port)
    await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    await server.serve_forever()
asyncio.run(main())
"""

# a fresh sysfs for the namespace's own network devices, the host's cgroups mounted back on it
_WORKER_ENGINE = """set -e
mount --make-rprivate /
mkdir -p {home}/cgroup
mount --rbind /sys/fs/cgroup {home}/cgroup
umount -l /sys
mount -t sysfs sysfs /sys
mount --rbind {home}/cgroup /sys/fs/cgroup
exec dockerd --data-root {home}/data --exec-root {home}/exec --pidfile {home}/docker.pid \\
    -H unix://{home}/docker.sock
"""


def run(*command: str, check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


@dataclass
class TwoHosts:
    home: Path
    registry_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_engine: subprocess.Popen[bytes] | None = None

    @property
    def worker_socket(self) -> str:
        return f"unix://{self.home}/docker.sock"

    def worker(self, *command: str, check: bool = True) -> str:
        return run("docker", "-H", self.worker_socket, *command, check=check)

    def start(self) -> TwoHosts:
        self._clean()
        run("ip", "netns", "add", NETNS)
        run("ip", "link", "add", "bm-h1", "type", "veth", "peer", "name", "bm-h2")
        run("ip", "link", "set", "bm-h2", "netns", NETNS)
        run("ip", "addr", "add", f"{MANAGER_ADDR}/24", "dev", "bm-h1")
        run("ip", "link", "set", "bm-h1", "up")
        for command in (
            ("ip", "addr", "add", f"{WORKER_ADDR}/24", "dev", "bm-h2"),
            ("ip", "link", "set", "bm-h2", "up"),
            ("ip", "link", "set", "lo", "up"),
            ("ip", "route", "add", "default", "via", MANAGER_ADDR),
        ):
            run("ip", "netns", "exec", NETNS, *command)
        self.start_worker_engine()
        forward = self.home / "forward.py"
        forward.write_text(_FORWARD)
        self.processes.append(
            self._in_namespace(sys.executable, str(forward), str(self.registry_port), MANAGER_ADDR)
        )
        run("docker", "swarm", "init", "--advertise-addr", MANAGER_ADDR)
        token = run("docker", "swarm", "join-token", "-q", "worker")
        self.worker(
            "swarm", "join", "--token", token, "--advertise-addr", WORKER_ADDR,
            f"{MANAGER_ADDR}:2377",
        )  # fmt: skip
        return self

    def _in_namespace(self, *command: str) -> subprocess.Popen[bytes]:
        log = (self.home / f"{Path(command[-1]).stem}.log").open("ab")
        return subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{NETNS}", *command], stdout=log, stderr=log
        )

    def start_worker_engine(self) -> None:
        script = self.home / "worker-engine.sh"
        script.write_text(_WORKER_ENGINE.format(home=self.home))
        log = (self.home / "worker-dockerd.log").open("ab")
        self.worker_engine = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{NETNS}", "unshare", "--mount", "sh", str(script)],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while self.worker("info", "--format", "{{.ServerVersion}}", check=False) == "":
            if self.worker_engine.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.home / "worker-dockerd.log").read_text()[-2000:])
            time.sleep(0.5)

    def stop_worker_engine(self) -> None:
        """The second host lost: its engine stops (and its containers with it)."""
        if self.worker_engine is not None and self.worker_engine.poll() is None:
            self.worker_engine.terminate()
            self.worker_engine.wait(60)

    def nodes(self) -> dict[str, str]:
        """Node id -> state (ready, down)."""
        listed = run("docker", "node", "ls", "--format", "{{.ID}} {{.Status}}")
        return dict(line.split()[:2] for line in listed.splitlines())  # type: ignore[misc]

    def stop(self) -> None:
        for service in run("docker", "service", "ls", "-q", check=False).split():
            run("docker", "service", "rm", service, check=False)
        self.worker("swarm", "leave", "--force", check=False)
        self.stop_worker_engine()
        run("docker", "swarm", "leave", "--force", check=False)
        for process in self.processes:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        self._clean()

    def _clean(self) -> None:
        run("ip", "netns", "del", NETNS, check=False)
        run("ip", "link", "del", "bm-h1", check=False)


def wait_for(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.5)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
