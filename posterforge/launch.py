"""Running ``translate`` and ``generate`` under ``torchrun``: each process takes its shard of the
job, its own GPU, and rank 0 prints the one summary.

``torchrun --nproc-per-node K -m posterforge translate ...`` (or across nodes with torchrun's
rendezvous) starts K copies of the command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set.
Sharding is by input (translate: ``--shard RANK+1/WORLD_SIZE``, a stable hash of each path) or by
poster index (generate: index ``i`` goes to rank ``i % WORLD_SIZE``), so the union of the outputs
is what one process writes. The processes meet once, at the end, to add up their counts (gloo, a
few bytes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from posterforge.errors import PosterforgeError


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int

    @property
    def shard(self) -> str:
        """This process's ``--shard K/N``."""
        return f"{self.rank + 1}/{self.world_size}"

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env(shard: str | None = None) -> Ranks | None:
    """The ranks that ``torchrun`` describes (None for a plain process or a world of one).

    Joins the process group (gloo) so that :func:`total` can add up the counts at the end.
    ``shard``: the user's ``--shard``, which torchrun's sharding replaces.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    if shard is not None:
        raise PosterforgeError(
            "--shard and torchrun both split the inputs: leave out --shard (each torchrun "
            "process takes its own share)"
        )
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=ranks.rank, world_size=world)
    return ranks


def device_for(device: str, ranks: Ranks | None) -> str:
    """``--device auto`` under torchrun: this process's own GPU (``cuda:LOCAL_RANK``)."""
    if ranks is None or device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{ranks.local_rank % torch.cuda.device_count()}"
    return device


def total(ranks: Ranks | None, counts: dict[str, int]) -> dict[str, int] | None:
    """Every process's ``counts`` added up, on rank 0 (None on the others); ``counts`` as they
    are for a plain process."""
    if ranks is None:
        return counts
    import torch.distributed as dist

    gathered: list[dict[str, int] | None] = [None] * ranks.world_size
    dist.all_gather_object(gathered, counts)
    dist.destroy_process_group()
    if not ranks.main:
        return None
    summed: dict[str, int] = {}
    for part in gathered:
        for key, value in (part or {}).items():
            summed[key] = summed.get(key, 0) + value
    return summed
