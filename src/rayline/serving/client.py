"""Find a served model through service discovery and ask it for predictions.

Example:
    >>> manager = ClusterManagerClient()  # doctest: +SKIP
    >>> with PredictionClient(manager) as client:  # doctest: +SKIP
    ...     client.predict("iris", {"instances": [[5.1, 3.5, 1.4, 0.2]]})["predictions"]
    [0]
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from rayline.clusters.errors import NotFoundError as ManagerNotFoundError
from rayline.serving.errors import NoEndpointError, PredictionRejectedError, ServingError

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient

__all__ = ["PredictionClient", "predict_at"]


def predict_at(
    http: httpx.Client, url: str, model: str, payload: Any, *, version: int | None = None
) -> dict[str, Any]:
    """POST one prediction request to the endpoint ``url`` of ``model``.

    Raises:
        PredictionRejectedError: The server answered 4xx (the detail says why).
        ServingError: The server failed (5xx) or did not answer.
    """
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
    try:
        response = http.post(f"{url}{path}:predict", json=payload)
    except httpx.HTTPError as err:
        raise ServingError(f"{url} did not answer ({type(err).__name__}: {err})") from err
    if 400 <= response.status_code < 500:
        raise PredictionRejectedError(response.status_code, _detail(response))
    if response.status_code >= 500:
        raise ServingError(
            f"{url} failed the prediction with HTTP {response.status_code}: {_detail(response)}"
        )
    body: dict[str, Any] = response.json()
    return body


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return response.text[:500]


class PredictionClient:
    """Predictions by model name: the endpoint comes from the Cluster Manager.

    Args:
        manager: Client of the Cluster Manager.
        timeout: Seconds to wait for one prediction.
    """

    def __init__(self, manager: ClusterManagerClient, *, timeout: float = 30) -> None:
        self._manager = manager
        self._http = httpx.Client(timeout=timeout)

    def endpoint(self, model: str) -> str:
        """The URL of a live endpoint of ``model``.

        Raises:
            NoEndpointError: Nothing serves it.
        """
        try:
            services = self._manager.live_endpoints(model).data
        except ManagerNotFoundError as err:
            raise NoEndpointError(model) from err
        if not services:
            raise NoEndpointError(model)
        return services[0].url

    def predict(self, model: str, payload: Any, *, version: int | None = None) -> dict[str, Any]:
        """Ask the model for predictions; see :func:`predict_at`."""
        return predict_at(self._http, self.endpoint(model), model, payload, version=version)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> PredictionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
