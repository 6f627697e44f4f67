"""``rayline stack status``: each component's state, pid and address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from rayline.stack.airflow import ADMIN_USER, AirflowClient
from rayline.stack.airflow_components import AIRFLOW_COMPONENTS, healthy
from rayline.stack.processes import BackgroundProcess, answers
from rayline.stack.services import SERVICES, service_addresses, services_up

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rayline.stack.addons import Addon
    from rayline.stack.config import StackConfig
    from rayline.stack.state import StackState

__all__ = ["ComponentStatus", "StackView", "stack_status"]


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``rayline stack status``."""

    name: str
    state: str  # up, down, starting, external (running, not started by the stack)
    url: str
    pid: int | None = None
    detail: str = ""


class StackView(Protocol):
    """What the status needs of a stack (``rayline.stack.stack.Stack`` has it)."""

    config: StackConfig
    state: StackState

    def manager(self) -> BackgroundProcess: ...
    def addons(self) -> Iterable[Addon]: ...
    def process(self, name: str) -> BackgroundProcess: ...


def stack_status(stack: StackView) -> list[ComponentStatus]:
    """Each component's state and address: services, manager, add-ons, Airflow."""
    config = stack.config
    running = services_up(config)
    started = set(stack.state.started("services"))
    rows = []
    addresses = service_addresses(config)
    for name in SERVICES:
        state = _state(name in running, name in started)
        rows.append(ComponentStatus(name, state, addresses[name]))
    manager_answers = answers(f"{config.manager_url}/healthz")
    rows.append(_process_status(stack.manager(), config.manager_url, manager_answers))
    started_addons = set(stack.state.started("addons"))
    for addon in stack.addons():
        state = _state(addon.is_up(), addon.name in started_addons)
        rows.append(ComponentStatus(addon.name, state, addon.url))
    health = AirflowClient(config.airflow_url, ADMIN_USER, SecretStr("")).health()
    for name, key in AIRFLOW_COMPONENTS.items():
        url = config.airflow_url if name == "airflow-api-server" else ""
        rows.append(_process_status(stack.process(name), url, healthy(health, key)))
    return rows


def _state(running: bool, ours: bool) -> str:
    if not running:
        return "down"
    return "up" if ours else "external"


def _process_status(process: BackgroundProcess, url: str, answers: bool) -> ComponentStatus:
    pid = process.pid()
    if pid is None:
        return ComponentStatus(process.name, "down", url, detail=str(process.log_file))
    return ComponentStatus(
        process.name, "up" if answers else "starting", url, pid, str(process.log_file)
    )
