"""Run ``ray start`` for one local node: loopback kept, start staggered, startup retried.

Run as a script, not imported::

    python _ray_start.py [--rayline-slots=DIR:K] [--rayline-dashboard=URL
                         --rayline-wait-nodes=N] start ...

Loopback: Ray's CLI replaces 127.0.0.1 with the host's routable IP, in
``--node-ip-address`` and in ``--address`` alike (ray-project/ray#26293, #59110),
which would bind the GCS and raylet to a public interface. The backend starts
nodes with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` so drivers and the dashboard
resolve loopback to loopback; that switch also makes ``ray start`` refuse to add
worker nodes, so the process running Ray's CLI turns it back on for itself and
keeps loopback addresses verbatim. Any other address goes through Ray unchanged.

Slow hosts: Ray 2.60 gives a starting node fixed, short windows (the raylet
waits about 15 s for its dashboard agent, ``ray start`` 30 s for the node to
register), and neither can be configured. On a small, busy host a node misses
them now and then, so:

* at most ``K`` nodes start at once on the host: each launcher holds one of ``K``
  lock files in ``DIR`` from ``ray start`` until its node is up;
* a worker first waits until ``N`` nodes (the head) are alive, so it never holds
  a start slot while its head is still waiting for one; and
* this process supervises ``ray start`` in a child and starts it again when it
  fails before the node is up. Afterwards it lives exactly as long as the child.

Start-up CPU: importing Ray's CLI module costs about 5 s of CPU here, 3.6 s of it
for the plug-in command groups (``ray serve``, ``ray job``, ``ray list``...) that
``ray start`` never uses; Ray imports each in a ``try`` and goes on without it.
The ``ray start`` process leaves them out, and the GCS starts that much sooner.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

_LOOPBACK = {"127.0.0.1": "127.0.0.1", "::1": "::1", "localhost": "127.0.0.1"}
_OPTION = "--rayline-"
_STARTED = b"Ray runtime started."
_ATTEMPTS = 5
_RETRY_DELAY_SECONDS = 2
_WAIT_LIMIT_SECONDS = 900
# CLI plug-ins of ray.scripts.scripts that `ray start` does not use (each optional there).
_UNUSED_CLI_PLUGINS = (
    "ray.serve.scripts",
    "ray.dashboard.modules.job.cli",
    "ray.util.state.state_cli",
)


def _alive_nodes(dashboard: str) -> int:
    url = f"{dashboard}/api/v0/nodes?limit=10000&detail=false"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=_auth_headers())
    try:
        with opener.open(request, timeout=3) as response:
            rows = json.load(response)["data"]["result"]["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # not up yet
    return sum(1 for row in rows if row.get("state") == "ALIVE")


def _auth_headers() -> dict[str, str]:
    """The cluster's token (the file the backend named in RAY_AUTH_TOKEN_PATH) as a header."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if not path:
        return {}
    try:
        token = Path(path).read_text().strip()
    except OSError:
        return {}
    return {"Authorization": f"Bearer {token}"} if token else {}


def _wait_for_nodes(dashboard: str, count: int) -> None:
    deadline = time.monotonic() + _WAIT_LIMIT_SECONDS
    while _alive_nodes(dashboard) < count:
        if time.monotonic() > deadline:
            sys.exit(
                f"gave up after {_WAIT_LIMIT_SECONDS}s waiting for {count} nodes at {dashboard}"
            )
        time.sleep(0.5)


def _run_ray_start(args: list[str]) -> int:
    """Ray's CLI in this process, with loopback addresses kept."""
    if args[:1] == ["start"]:
        for module in _UNUSED_CLI_PLUGINS:
            sys.modules.setdefault(module, None)  # type: ignore[arg-type]  # import -> ImportError
    # Imported here: the supervising process never needs Ray.
    from ray._private import ray_constants, services
    from ray.scripts import scripts

    resolve = services.resolve_ip_for_localhost

    def keep_loopback(host: str) -> str:
        return _LOOPBACK[host] if host in _LOOPBACK else str(resolve(host))

    ray_constants.ENABLE_RAY_CLUSTER = True
    services.resolve_ip_for_localhost = keep_loopback
    sys.argv = [sys.argv[0], *args]
    return int(scripts.main() or 0)  # type: ignore[no-untyped-call]


class _StartSlots:
    """``count`` host-wide start slots, each an exclusive ``flock`` on a file in ``directory``."""

    def __init__(self, directory: Path, count: int) -> None:
        self._paths = [directory / f"slot-{i}.lock" for i in range(count)]
        self._held: IO[bytes] | None = None
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def try_acquire(self) -> bool:
        for path in self._paths:
            handle = open(path, "ab")  # noqa: SIM115 (kept open while the slot is held)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            with self._lock:
                self._held = handle
            return True
        return False

    def release(self) -> None:
        with self._lock:
            if self._held is not None:
                self._held.close()  # closing drops the flock
                self._held = None


class _Supervisor:
    """Runs ``ray start`` in a child until the node is up; retries startup failures."""

    def __init__(self, args: list[str], slots: _StartSlots | None) -> None:
        self._argv = [sys.executable, __file__, f"{_OPTION}exec", *args]
        self._slots = slots
        self._child: subprocess.Popen[bytes] | None = None
        self._started = threading.Event()
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        attempt = 1
        while True:
            if not self._wait_for_slot():
                return 128 + signal.SIGTERM
            code = self._attempt()
            if self._slots is not None:
                self._slots.release()
            if self._started.is_set() or self._stopping or attempt == _ATTEMPTS:
                return code if code >= 0 else 128 - code  # like a shell: 128 + signal
            attempt += 1
            print(
                f"rayline: `ray start` exited with {code} before the node was up; "
                f"starting it again (attempt {attempt} of {_ATTEMPTS})",
                flush=True,
            )
            time.sleep(_RETRY_DELAY_SECONDS)

    def _wait_for_slot(self) -> bool:
        """Hold a start slot (or there are none); False when asked to stop meanwhile."""
        while self._slots is not None and not self._slots.try_acquire():
            if self._stopping:
                return False
            time.sleep(0.5)
        return not self._stopping

    def _attempt(self) -> int:
        child = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._child = child
        assert child.stdout is not None
        # Copy in a thread: Ray's own children may hold the pipe open after the child exits.
        copier = threading.Thread(target=self._copy, args=(child.stdout,), daemon=True)
        copier.start()
        code = child.wait()
        copier.join(timeout=2)
        return code

    def _copy(self, stream: IO[bytes]) -> None:
        out = sys.stdout.buffer
        for line in iter(stream.readline, b""):
            out.write(line)
            out.flush()
            if _STARTED in line:
                self._started.set()
                if self._slots is not None:
                    self._slots.release()  # up: let the next node start

    def _forward(self, signum: int, _frame: object) -> None:
        self._stopping = True
        if self._child is not None and self._child.poll() is None:
            self._child.send_signal(signum)


def main() -> int:
    """Parse our own leading options, then supervise (or, in the child, run) ``ray start``."""
    options = {}
    args = sys.argv[1:]
    while args and args[0].startswith(_OPTION):
        name, _, value = args.pop(0)[len(_OPTION) :].partition("=")
        options[name] = value
    if "exec" in options:
        return _run_ray_start(args)
    if "wait-nodes" in options:
        _wait_for_nodes(options["dashboard"], int(options["wait-nodes"]))
    slots = None
    if "slots" in options:
        directory, _, count = options["slots"].rpartition(":")
        slots = _StartSlots(Path(directory), int(count))
    return _Supervisor(args, slots).run()


if __name__ == "__main__":
    sys.exit(main())
