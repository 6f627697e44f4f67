"""The confinement of a model container: who it runs as, what it may do and use.

A model container runs code that came out of a training job (a pickled model
is code), next to the host's network. So it gets no more than serving needs:

- an unprivileged user (the image's, repeated here so an image from another
  base cannot fall back to root), no Linux capabilities and no way to gain
  any (``no-new-privileges`` stops set-uid binaries);
- a read-only root file system: the code, model and config it serves cannot be
  changed from inside; Ray's session dir, logs, sockets and Python's temp files
  go to a size-capped ``/tmp`` tmpfs mounted ``noexec`` (nothing written at run
  time can be executed);
- memory, CPU and process limits from the serving spec;
- no secret of the stack in its environment: the model is baked into the
  image, so the container needs no S3, database or manager credentials.
"""

from __future__ import annotations

from typing import Any

from rayline.serving.model_image import SCRATCH_DIR, SERVING_GID, SERVING_UID
from rayline.serving.spec import ServingSpec

__all__ = ["container_cpus", "hardened_run_options"]

_MIB = 1024 * 1024
_NANO = 1_000_000_000


def container_cpus(spec: ServingSpec, engine_cpus: int | None) -> float:
    """The CPU limit of a container of ``spec``, capped at the engine's CPUs.

    Docker refuses a limit above the CPUs it has, so a spec written for a larger
    machine still starts here, on all of this one's CPUs.
    """
    wanted = spec.container_cpus if spec.container_cpus is not None else float(spec.ray_cpus)
    if engine_cpus is not None and engine_cpus > 0:
        return min(wanted, float(engine_cpus))
    return wanted


def hardened_run_options(spec: ServingSpec, *, engine_cpus: int | None) -> dict[str, Any]:
    """Keyword arguments of ``containers.run`` that confine a model container.

    Args:
        spec: The serving spec; its ``container_*`` fields give the limits.
        engine_cpus: The Docker engine's CPUs (``NCPU`` of ``docker info``), or
            None when unknown.

    Returns:
        ``user``, ``cap_drop``, ``security_opt``, ``read_only``, ``tmpfs``,
        ``mem_limit``, ``memswap_limit``, ``nano_cpus`` and ``pids_limit``.

    Example:
        >>> hardened_run_options(ServingSpec(), engine_cpus=2)["pids_limit"]
        1024
    """
    memory = spec.container_memory_mib * _MIB
    return {
        "user": f"{SERVING_UID}:{SERVING_GID}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": {SCRATCH_DIR: f"rw,noexec,nosuid,nodev,size={spec.container_tmp_mib}m,mode=1777"},
        "mem_limit": memory,
        # Equal to the memory limit: no swap on top, the limit is the limit.
        "memswap_limit": memory,
        "nano_cpus": int(container_cpus(spec, engine_cpus) * _NANO),
        "pids_limit": spec.container_pids,
    }
