"""Parsing and prediction run off the replica's event loop: a slow request stalls no other."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from tests.unit.serving.model_factory import iris_rows
from tests.unit.serving.replica import replica_app

BATCH = 8


def test_a_slow_prediction_does_not_stall_the_other_requests(tmp_path: Path) -> None:
    with replica_app(tmp_path, max_batch_size=BATCH) as replica:
        predictor = replica.server._predictor
        predict = predictor.predict
        release = threading.Event()

        def slow_for_big_batches(frame: pd.DataFrame) -> Any:
            if len(frame) >= 100:
                release.wait(timeout=8)  # on the event loop this would freeze every request
            return predict(frame)

        predictor.predict = slow_for_big_batches
        elapsed = asyncio.run(_small_requests_beside_a_big_one(replica.app, release))

    assert elapsed["healthz"] < 3, elapsed
    assert elapsed["small"] < 3, elapsed


async def _small_requests_beside_a_big_one(app: Any, release: threading.Event) -> dict[str, float]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
        # Times count from before the big request: a blocked loop would also delay
        # the sleep below, so timing from after it would hide the stall.
        started = time.monotonic()
        big = asyncio.create_task(
            client.post("/v1/models/iris:predict", json={"instances": iris_rows(200).tolist()})
        )
        await asyncio.sleep(0.5)  # the big one is predicting now
        elapsed: dict[str, float] = {}
        assert (await client.get("/healthz")).status_code == 200
        elapsed["healthz"] = time.monotonic() - started
        small = await client.post(
            "/v1/models/iris:predict", json={"instances": iris_rows(2).tolist()}
        )
        elapsed["small"] = time.monotonic() - started
        assert small.status_code == 200, small.text
        assert not big.done()
        release.set()
        assert (await big).status_code == 200
        return elapsed
