"""The start-up check: unreachable servers and refused credentials, said clearly and early."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rayline.tracking.connect import display_uri, explain
from rayline.tracking.errors import TrackingUnavailableError
from rayline.tracking.settings import TrackingSettings
from rayline.tracking.tracker import NullTracker, open_tracker


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Refusing(BaseHTTPRequestHandler):
    """Answers /health like MLflow, and 401 to every API call (a server with auth)."""

    def _answer(self) -> None:
        ok = self.path == "/health"
        body = b"OK" if ok else b"You are not authenticated."
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def auth_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_server_fails_before_training_when_required() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingUnavailableError) as caught:
        open_tracker(model_name="m", run_name="r", settings=TrackingSettings(tracking_uri=uri))
    message = str(caught.value)
    assert f"MLflow tracking server {uri} is unreachable" in message
    assert "training did not start" in message and "RAYLINE_MLFLOW_REQUIRED=false" in message


def test_unreachable_server_turns_tracking_off_when_not_required() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    settings = TrackingSettings(tracking_uri=uri, required=False)
    tracker = open_tracker(model_name="m", run_name="r", settings=settings)
    assert isinstance(tracker, NullTracker)
    assert tracker.failure is not None and "unreachable" in tracker.failure


def test_refused_credentials_are_named(auth_server: str) -> None:
    settings = TrackingSettings(tracking_uri=auth_server)
    with pytest.raises(TrackingUnavailableError, match="refused the credentials") as caught:
        open_tracker(model_name="m", run_name="r", settings=settings)
    assert "MLFLOW_TRACKING_USERNAME" in str(caught.value)


def test_a_password_in_the_uri_never_reaches_a_message() -> None:
    uri = f"http://user:s3cret@127.0.0.1:{_closed_port()}"
    settings = TrackingSettings(tracking_uri=uri, required=False)
    tracker = open_tracker(model_name="m", run_name="r", settings=settings)
    assert tracker.failure is not None and "s3cret" not in tracker.failure
    assert display_uri(uri) == uri.replace("user:s3cret@", "")


def test_a_server_gone_mid_run_is_called_unreachable() -> None:
    settings = TrackingSettings(tracking_uri="http://127.0.0.1:5000")
    err = Exception(
        "API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/log-batch failed with exception "
        "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url"
    )
    message = str(explain(err, settings, "logging metrics"))
    assert "became unreachable while logging metrics" in message
    assert "deploy/mlflow.sh up" in message
