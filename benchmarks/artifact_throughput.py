"""Artifact store throughput: rayline.storage vs plain boto3, same S3 server.

Uploads and downloads a file of random data (1 GiB by default) through
``rayline.storage`` (which also computes and verifies sha256) and through
plain ``boto3`` ``upload_file``/``download_file`` with boto3's default
``TransferConfig``, alternating the two, and prints median MB/s and the
ratio ours/baseline for each direction.

Run (after ``deploy/services.sh up``)::

    source "$(deploy/services.sh env-file)"
    uv run python benchmarks/artifact_throughput.py --rounds 3

Endpoint and credentials come from ``RAYLINE_S3_*``; ``--threshold-mb``,
``--chunk-mb`` and ``--concurrency`` override the tuning settings for sweeps.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from rayline.config import Settings
from rayline.storage.s3_store import S3ArtifactStore

MIB = 1024 * 1024
console = Console()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side (default 3)")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temp files go")
    parser.add_argument("--threshold-mb", type=int, default=None)
    parser.add_argument("--chunk-mb", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    return parser.parse_args()


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.threshold_mb is not None:
        overrides["s3_multipart_threshold_mb"] = args.threshold_mb
    if args.chunk_mb is not None:
        overrides["s3_multipart_chunk_mb"] = args.chunk_mb
    if args.concurrency is not None:
        overrides["s3_max_concurrency"] = args.concurrency
    settings = Settings(**overrides)
    if not settings.s3_endpoint_url or settings.s3_access_key_id is None:
        raise SystemExit(
            "RAYLINE_S3_ENDPOINT_URL / RAYLINE_S3_ACCESS_KEY_ID are not set: run "
            '`deploy/services.sh up` and `source "$(deploy/services.sh env-file)"`'
        )
    return settings


def baseline_client(settings: Settings) -> Any:
    # Plain boto3: default client config and default TransferConfig. Only the
    # addressing style is set, because a loopback endpoint has no bucket DNS names.
    return boto3.client(
        "s3", config=Config(s3={"addressing_style": "path"}), **settings.s3_client_kwargs()
    )


def make_random_file(path: Path, size: int) -> None:
    block = 16 * MIB
    with path.open("wb") as fh:
        remaining = size
        while remaining:
            n = min(block, remaining)
            fh.write(os.urandom(n))
            remaining -= n


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    settings = load_settings(args)
    bucket = f"rayline-bench-{secrets.token_hex(4)}"
    store = S3ArtifactStore(bucket, "ours", settings)
    client = baseline_client(settings)
    size = args.size_mib * MIB
    results: dict[str, dict[str, list[float]]] = {
        "upload": {"ours": [], "baseline": []},
        "download": {"ours": [], "baseline": []},
    }
    console.print(
        f"[bold]{args.size_mib} MiB[/] x {args.rounds} rounds against {settings.s3_endpoint_url}; "
        f"ours: threshold {settings.s3_multipart_threshold_mb} MiB, chunk "
        f"{settings.s3_multipart_chunk_mb} MiB, {settings.s3_max_concurrency} threads"
    )
    with tempfile.TemporaryDirectory(prefix="rayline-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        src = work / "payload.bin"
        make_random_file(src, size)
        client.create_bucket(Bucket=bucket)
        try:
            steps: dict[str, dict[str, Callable[[], object]]] = {
                "upload": {
                    "ours": lambda: store.put_file("payload.bin", src),
                    "baseline": lambda: client.upload_file(str(src), bucket, "base/payload.bin"),
                },
                "download": {
                    "ours": lambda: store.get_file("payload.bin", work / "ours.bin"),
                    "baseline": lambda: client.download_file(
                        bucket, "base/payload.bin", str(work / "base.bin")
                    ),
                },
            }
            for round_no in range(args.rounds):
                # Alternate who goes first so neither side always gets a warm server.
                order = ["ours", "baseline"] if round_no % 2 == 0 else ["baseline", "ours"]
                for direction in ("upload", "download"):
                    for side in order:
                        secs = timed(steps[direction][side])
                        results[direction][side].append(size / 1e6 / secs)
                for leftover in ("ours.bin", "base.bin"):
                    (work / leftover).unlink(missing_ok=True)
                report_round(round_no + 1, results)
        finally:
            empty_bucket(client, bucket)
    return results


def empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


def report_round(round_no: int, results: dict[str, dict[str, list[float]]]) -> None:
    parts = [
        f"{d} ours {results[d]['ours'][-1]:.0f} / boto3 {results[d]['baseline'][-1]:.0f} MB/s"
        for d in ("upload", "download")
    ]
    console.print(f"round {round_no}: " + "; ".join(parts))


def summarise(results: dict[str, dict[str, list[float]]], rounds: int) -> bool:
    table = Table(
        title=f"Artifact throughput, median of {rounds} rounds (MB/s)",
        caption="ratio = ours/boto3 medians; paired ratio = median of per-round ratios",
    )
    table.add_column("direction")
    table.add_column("ours (+sha256)", justify="right")
    table.add_column("boto3 default", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("paired ratio", justify="right")
    slower = []
    for direction, sides in results.items():
        ours, base = statistics.median(sides["ours"]), statistics.median(sides["baseline"])
        ratio = ours / base
        # Each round's two runs are adjacent in time, so their ratio is less
        # sensitive to other load on the machine than the ratio of medians.
        pairs = zip(sides["ours"], sides["baseline"], strict=True)
        paired = statistics.median(o / b for o, b in pairs)
        if ratio < 1.0:
            slower.append(direction)
        colour = "green" if ratio >= 1.0 else "red"
        table.add_row(
            direction, f"{ours:.0f}", f"{base:.0f}", f"[{colour}]{ratio:.2f}x[/]", f"{paired:.2f}x"
        )
    console.print(table)
    if slower:
        console.print(
            f"Summary: [red]rayline.storage is slower than plain boto3 on: {', '.join(slower)}[/]"
        )
    else:
        console.print(
            "Summary: [green]rayline.storage is at least as fast as plain boto3 in both "
            "directions[/], while computing and verifying sha256."
        )
    return not slower


def main() -> None:
    args = parse_args()
    results = run(args)
    console.print(f"load average after the run: {os.getloadavg()[0]:.1f} (2 cores)")
    summarise(results, args.rounds)


if __name__ == "__main__":
    main()
