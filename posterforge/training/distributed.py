"""Data-parallel set-up from ``torchrun``'s environment; a no-op when run as a plain process.

Tasks wrap their own nets in ``DistributedDataParallel``; the harness only needs the rank (for
seeds, data shards and who writes files) and a barrier.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def _dist():  # torch.distributed, imported late so that importing this module is cheap
    import torch.distributed as dist

    return dist


def init_from_env(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` describes (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and return ``(rank, world_size, device)``.

    NCCL and ``cuda:LOCAL_RANK`` when CUDA is available, gloo and the CPU otherwise. Outside
    torchrun (no ``WORLD_SIZE``) it returns ``(0, 1, device)`` and starts nothing. Calling it
    again once the group exists just reports it.
    """
    import torch

    dist = _dist()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size <= 1 or not dist.is_available():
        return 0, 1, device
    if not dist.is_initialized():
        kwargs = {"device_id": device} if use_cuda else {}
        dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"), **kwargs)
    return dist.get_rank(), dist.get_world_size(), device


def wrap_ddp(
    nets: tuple[torch.nn.Module, ...], device: torch.device, **kwargs: object
) -> tuple[torch.nn.Module, ...]:
    """``nets`` wrapped in ``DistributedDataParallel`` when a process group is up (``kwargs`` go
    to each wrapper), else the nets themselves: what a task's step calls for its forwards."""
    if not is_initialized():
        return nets
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return tuple(DDP(n, device_ids=ids, **kwargs) for n in nets)


def is_initialized() -> bool:
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return _dist().get_rank() if is_initialized() else 0


def world_size() -> int:
    return _dist().get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, and in a plain single process: the one that writes files."""
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        _dist().barrier()


def cleanup() -> None:
    """Leave the process group (at the end of training); harmless when there is none."""
    if is_initialized():
        _dist().destroy_process_group()
