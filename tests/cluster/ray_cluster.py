"""A two-node Ray cluster on this machine, for tests and benchmarks/cluster.py.

Each node is a `ray start --block` process of its own, in its own temp dir, with a marker in its
environment that every process it starts inherits (raylet, agents, Ray workers). Stopping a node
kills exactly the processes carrying its marker, by pid: never `ray stop`, which would stop every
Ray process of this user on the machine, other people's clusters included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
MARKER = "TUNELAB_TEST_RAY_NODE"
START_DEADLINE_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def marked_pids(marker: str) -> list[int]:
    """Pids of this user's processes whose environment carries `marker`."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # not ours, or gone
            continue
    return found


def is_zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent (it holds no resources any more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class LocalRayCluster:
    """`head` with `head_cpus` CPUs, then `extra` nodes named node2, node3, ... each with one CPU
    and a custom resource of its name; every node declares `gpus` GPUs (fake ones where the
    machine has none: Ray schedules by the declaration). Use as a context manager; every node is
    gone after it."""

    def __init__(
        self, head_cpus: int = 1, extra: int = 1, env: dict[str, str] | None = None, gpus: int = 0
    ) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.tag = uuid.uuid4().hex[:8]
        self.root = Path(tempfile.mkdtemp(prefix="tlray", dir="/tmp"))  # unix socket paths must stay short
        # Token auth off, explicitly: Ray turns it on for a server whenever ~/.ray/auth_token exists,
        # and a driver then needs the same setting. Drivers of this cluster run with `self.env`.
        self.env = {**os.environ, **(env or {}), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.head_cpus = head_cpus
        self.gpus = gpus
        self.extra = extra
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> LocalRayCluster:
        try:
            self._start("head", ["--head", f"--port={self.port}", f"--num-cpus={self.head_cpus}",
                                 "--include-dashboard=false"])
            self._wait_nodes(1)
            for i in range(2, 2 + self.extra):
                name = f"node{i}"
                self._start(name, [f"--address={self.address}", "--num-cpus=1",
                                   f"--resources={json.dumps({name: 1})}"])
            self._wait_nodes(1 + self.extra)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, name: str, args: list[str]) -> None:
        temp = self.root / name
        temp.mkdir()
        env = {**self.env, MARKER: f"{self.tag}-{name}"}
        cmd = [RAY, "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1",
               "--object-store-memory=100000000", f"--temp-dir={temp}", f"--num-gpus={self.gpus}", *args]
        log = (self.root / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def _wait_nodes(self, count: int) -> None:
        """Until the cluster lists `count` live nodes: one probe process that polls the GCS."""
        probe = (
            "import sys, time, ray\n"
            "end = time.monotonic() + float(sys.argv[3])\n"
            "while True:\n"
            "    try:\n"
            "        ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
            "        break\n"
            "    except ConnectionError:\n"
            "        assert time.monotonic() < end, 'no GCS'\n"
            "        time.sleep(0.5)\n"
            "while sum(1 for n in ray.nodes() if n['Alive']) < int(sys.argv[2]):\n"
            "    assert time.monotonic() < end, 'too few nodes'\n"
            "    time.sleep(0.25)\n"
        )
        try:
            res = subprocess.run([sys.executable, "-c", probe, self.address, str(count), str(START_DEADLINE_S)],
                                 env=self.env, capture_output=True, text=True, timeout=START_DEADLINE_S + 30)
        except subprocess.TimeoutExpired:
            res = None
        if res is None or res.returncode != 0:
            logs = " | ".join(f"{name}: {self.log(name)[-800:]}" for name in self.procs)
            raise RuntimeError(f"ray cluster did not reach {count} nodes: {res.stderr[-1500:] if res else ''} {logs}")

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL every process of one node (its raylet, agents and Ray workers): a lost machine.
        Repeated until none is left, since a process may be starting while the others die."""
        killed: list[int] = []
        for _ in range(50):
            pids = [pid for pid in marked_pids(f"{self.tag}-{name}") if not is_zombie(pid)]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed += pids
            time.sleep(0.05)
        proc = self.procs.get(name)
        if proc is not None:
            proc.wait(timeout=30)
        return killed

    def node_of(self, pid: int) -> str | None:
        """Which node started a process (by the marker in its environment)."""
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return None
        prefix = f"{MARKER}={self.tag}-".encode()
        for item in env:
            if item.startswith(prefix):
                return item[len(prefix):].decode()
        return None

    def stop(self) -> None:
        """Kill every node's processes, the head last, and remove the temp dirs."""
        for name in [n for n in self.procs if n != "head"] + ["head"]:
            if name in self.procs:
                self.kill_node(name)
        for name in self.procs:  # stragglers that were starting while we looked
            for pid in marked_pids(f"{self.tag}-{name}"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)
