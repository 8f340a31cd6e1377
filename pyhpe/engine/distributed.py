"""torchrun / DistributedDataParallel helpers and the deterministic, resumable sample order."""
from __future__ import annotations

import os
from typing import List, Tuple

import torch
import torch.nn as nn


def dist_info() -> Tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: torch.device) -> bool:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU); False for one process."""
    _, world, _ = dist_info()
    if world <= 1:
        return False
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper."""
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return model.module
    return model


def all_ranks_any(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop at the same step)."""
    t = torch.tensor([float(flag)])
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


class ShardedOrder(torch.utils.data.Sampler):
    """Deterministic per-epoch permutation (seeded by seed and epoch), sharded over DDP ranks,
    starting after ``skip_batches`` batches already consumed (exact mid-epoch resume)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.bs, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.skip_batches = 0, 0

    def indices(self) -> List[int]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per = self.n // self.world
        return perm[self.rank * per:(self.rank + 1) * per]

    def __iter__(self):
        return iter(self.indices()[self.skip_batches * self.bs:])

    def __len__(self) -> int:
        return max(len(self.indices()) - self.skip_batches * self.bs, 0)


__all__ = ["ShardedOrder", "all_ranks_any", "dist_info", "init_distributed", "unwrap"]
