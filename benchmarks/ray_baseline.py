"""The hand-written Ray baseline of the train -> serve workflow, with none of Rayline.

What a user would type by hand on one machine, each step timed:

1. ``ray start --head`` (a training cluster) until its job API answers;
2. ``ray job submit`` of a script that fits the demo's random forest on iris and
   pickles it to a file, until the job has succeeded;
3. ``ray stop`` of that cluster;
4. ``ray start --head`` again (the serving cluster);
5. ``serve run`` of a minimal deployment that loads the pickle, until the first
   request is answered.

``ray stop`` would stop every Ray on the machine, so the baseline ends its own
cluster by killing the process group of its ``ray start --block`` (what ``ray stop``
does to those processes). Loopback stays loopback as in ``benchmarks/provisioning.py``.

    uv run python benchmarks/ray_baseline.py [--runs 1]
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
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import typer

__all__ = ["STEPS", "run_once"]

STEPS = ("ray start (training)", "ray job submit", "ray stop", "ray start (serving)", "serve run")
_BIN = Path(sys.executable).parent
# Ray's CLI rewrites 127.0.0.1 to the host's routable address (ray-project/ray#26293);
# nothing here may bind another address, so the baseline keeps loopback as ours does.
_RAY_CLI = (
    "import sys\n"
    "from ray._private import services\n"
    "resolve = services.resolve_ip_for_localhost\n"
    "services.resolve_ip_for_localhost = "
    "lambda host: '127.0.0.1' if host in ('127.0.0.1', 'localhost') else resolve(host)\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv = ['ray', *sys.argv[1:]]\n"
    "sys.exit(main())\n"
)
_ENV = {
    **os.environ,
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
_TRAIN = textwrap.dedent(
    """
    import pickle, sys
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    data = load_iris(as_frame=True).frame
    x, y = data.drop(columns="target"), data["target"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(x_train, y_train)
    print("accuracy", model.score(x_test, y_test))
    with open(sys.argv[1], "wb") as handle:
        pickle.dump(model, handle)
    """
)
_APP = textwrap.dedent(
    """
    import pickle
    import pandas as pd
    from ray import serve
    from starlette.requests import Request

    @serve.deployment
    class Model:
        def __init__(self) -> None:
            with open(__file__.rsplit("/", 1)[0] + "/model.pkl", "rb") as handle:
                self.model = pickle.load(handle)

        async def __call__(self, request: Request) -> dict:
            rows = (await request.json())["instances"]
            columns = list(self.model.feature_names_in_)
            return {"predictions": self.model.predict(pd.DataFrame(rows, columns=columns)).tolist()}

    app = Model.bind()
    """
)
_SAMPLE = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _until(check: object, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"baseline: {what} not reached after {timeout:g} s")
        time.sleep(0.1)


def _answers(url: str, **kwargs: object) -> bool:
    try:
        return httpx.request(timeout=2, url=url, **kwargs).status_code == 200  # type: ignore[arg-type]
    except httpx.HTTPError:
        return False


@contextmanager
def _head(workdir: Path, log_name: str, **env: str) -> Iterator[tuple[str, str]]:
    """A ``ray start --head --block`` cluster; yields (GCS address, dashboard URL)."""
    temp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # short: Ray's socket paths
    gcs, dash = _free_port(), _free_port()
    command = [
        sys.executable, "-c", _RAY_CLI, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}", f"--temp-dir={temp}", "--num-cpus=2",
        "--disable-usage-stats",
    ]  # fmt: skip
    with (workdir / log_name).open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**_ENV, **env},
            start_new_session=True,
        )
    try:
        dashboard = f"http://127.0.0.1:{dash}"
        _until(lambda: _answers(f"{dashboard}/api/version", method="GET"), "job API")
        yield f"127.0.0.1:{gcs}", dashboard
    finally:
        _stop_group(process)
        shutil.rmtree(temp, ignore_errors=True)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _submit(dashboard: str, entrypoint: list[str], workdir: Path) -> None:
    """``ray job submit`` and wait; retried while the head's job agent is not up yet.

    On a loaded machine the dashboard answers before the head's agent does, and
    Ray refuses the job ("No available agent"): a user would submit again.
    """
    log = workdir / "job-submit.log"
    for _attempt in range(5):
        with log.open("wb") as out:
            done = subprocess.run(
                [str(_BIN / "ray"), "job", "submit", "--address", dashboard, "--", *entrypoint],
                env=_ENV, stdout=out, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode == 0:
            return
        text = log.read_text(errors="replace")
        if "No available agent" not in text:
            raise RuntimeError(f"baseline: the training job failed:\n{text[-2000:]}")
        time.sleep(1)
    raise RuntimeError(f"baseline: the head's job agent never came up:\n{text[-2000:]}")


def run_once(workdir: Path) -> dict[str, float]:
    """One hand-written train -> serve run; seconds per step (see ``STEPS``) and total."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train_iris.py").write_text(_TRAIN)
    (workdir / "baseline_app.py").write_text(_APP)
    model = workdir / "model.pkl"
    model.unlink(missing_ok=True)
    times: dict[str, float] = {}
    started = mark = time.monotonic()

    def lap(step: str) -> None:
        nonlocal mark
        now = time.monotonic()
        times[step] = now - mark
        mark = now

    with _head(workdir, "training-head.log") as (_, dashboard):
        lap(STEPS[0])
        _submit(dashboard, [sys.executable, str(workdir / "train_iris.py"), str(model)], workdir)
        lap(STEPS[1])
    lap(STEPS[2])
    port = _free_port()
    config = workdir / "serve.yaml"
    config.write_text(
        json.dumps(
            {
                "http_options": {"host": "127.0.0.1", "port": port},
                "applications": [
                    {
                        "name": "iris",
                        "route_prefix": "/",
                        "import_path": "baseline_app:app",
                    }
                ],
            }
        )
    )
    # Serve's replicas are workers of this head: they import the app from its path.
    with _head(workdir, "serving-head.log", PYTHONPATH=str(workdir)) as (gcs, _):
        lap(STEPS[3])
        with (workdir / "serve-run.log").open("ab") as log:
            serve = subprocess.Popen(
                [str(_BIN / "serve"), "run", "--address", gcs, str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=_ENV, start_new_session=True, cwd=workdir,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/"
            _until(lambda: _answers(url, method="POST", json=_SAMPLE), "first prediction")
            lap(STEPS[4])
        finally:
            _stop_group(serve)
    times["total"] = time.monotonic() - started
    return times


def main(runs: int = typer.Option(1, min=1, max=10, help="Runs, one after another.")) -> None:
    """Run the baseline and print each run's per-step seconds."""
    workdir = Path(tempfile.mkdtemp(prefix="rayline-baseline-"))
    for run in range(1, runs + 1):
        try:
            times = run_once(workdir)
        except Exception:
            print(f"run {run} failed; its logs are in {workdir}")
            raise
        steps = ", ".join(f"{s} {times[s]:.1f}" for s in STEPS)
        print(f"run {run}: total {times['total']:.1f} s ({steps})")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
