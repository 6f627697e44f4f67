"""Service discovery: the serving-endpoint methods of `ClusterManagerClient`."""

from __future__ import annotations

from rayline.clusters._pages import collect
from rayline.clusters._transport import Transport, parse, segment
from rayline.clusters.schemas import ServiceCreate, ServicePublic, ServicesPublic

__all__ = ["ServiceMethods"]


class ServiceMethods:
    """Register, list, look up and withdraw the endpoints that serve models."""

    _transport: Transport

    def register_service(self, spec: ServiceCreate) -> ServicePublic:
        """Register (or replace, by URL) a serving endpoint of a model version.

        Args:
            spec: the endpoint.

        Returns:
            The registered endpoint.

        Raises:
            NotFoundError: the model version or the backing cluster does not exist.
            ValidationError: the server refused the spec.
        """
        response = self._transport.request(
            "POST", "/v1/services", what="service", json=spec.model_dump(mode="json")
        )
        return parse(response, ServicePublic)

    def list_services(self, model: str | None = None) -> ServicesPublic:
        """Return registered endpoints, optionally of one model only, page after page.

        Args:
            model: a model name.

        Returns:
            The endpoints and their count.
        """
        params = [("model", model)] if model is not None else []

        def page(size: int, offset: int) -> list[ServicePublic]:
            response = self._transport.request(
                "GET",
                "/v1/services",
                what="service filter",
                params=[*params, ("limit", str(size)), ("offset", str(offset))],
            )
            return parse(response, ServicesPublic).data

        rows = collect(page, key=lambda s: s.id)
        return ServicesPublic(data=rows, count=len(rows))

    def live_endpoints(self, model: str) -> ServicesPublic:
        """Return the live endpoints serving ``model``.

        Args:
            model: a model name.

        Returns:
            The endpoints (at least one).

        Raises:
            NotFoundError: no live endpoint serves this model; deploy it first.

        Example:
            >>> url = client.live_endpoints("iris").data[0].url  # doctest: +SKIP
        """
        response = self._transport.request(
            "GET", f"/v1/services/{segment(model)}", what=f"model {model!r}"
        )
        return parse(response, ServicesPublic)

    def deregister_service(self, service_id: int) -> None:
        """Remove a serving endpoint.

        Args:
            service_id: the endpoint's id.

        Raises:
            NotFoundError: no endpoint has this id.
        """
        self._transport.request(
            "DELETE", f"/v1/services/{int(service_id)}", what=f"service {service_id}"
        )
