"""Several processes through ``torchrun``: which rank computes which chunk (scale-out).

``torchrun --nproc_per_node=K -m empirical all ...`` starts K copies of the run. Each finds its rank in
torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...), joins one
``torch.distributed`` group (``gloo`` on the CPU, ``nccl`` on CUDA, each rank on ``cuda:LOCAL_RANK``) and
then, for every experiment and network:

1. rank 0 lists the chunks (image batch x method) not yet in ``--out`` and sends the list to every rank;
2. rank r computes the pending chunks r, r + K, r + 2K, ... and writes each, atomically, into the shared
   ``--out/chunks`` (:class:`empirical.storage.chunks.ChunkStore`);
3. all ranks wait at a barrier; rank 0 then merges (the final tables are a pure function of the chunk
   files, so they are byte-identical whatever K, and to a single-process run).

A rank killed midway loses only its unfinished chunk; torchrun stops the others, and the same command
started again lists the finished chunks and shares out the rest. A run in one process (no ``WORLD_SIZE`` or
``WORLD_SIZE=1``) uses :class:`Shard` without ``torch.distributed`` at all.

Test hook: ``EMPIRICAL_TEST_KILL_AFTER_CHUNKS=RANK:N`` makes rank RANK kill itself with SIGKILL as soon as it
has written N chunks (tests/empirical/storage/test_distributed.py); nothing else reads it.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from datetime import timedelta

__all__ = ["KILL_HOOK", "Shard", "shard_from_environment"]

KILL_HOOK = "EMPIRICAL_TEST_KILL_AFTER_CHUNKS"
#: how long a rank waits for the others at a barrier: the slowest rank's share of one experiment
BARRIER_TIMEOUT = timedelta(hours=24)


class Shard:
    """One process's part of a run: ``rank`` of ``world`` (0 of 1 without torchrun), ``local_rank`` on its
    node; :meth:`assign` shares out work, :meth:`barrier` and :meth:`broadcast` are the only collectives."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, *, backend: str | None = None):
        self.rank, self.world, self.local_rank, self.backend = rank, world, local_rank, backend
        self.chunks_written = 0
        self._kill_after = _kill_after(rank)

    def __repr__(self) -> str:
        return f"Shard(rank={self.rank}, world={self.world}, backend={self.backend!r})"

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that lists pending work, merges and writes the final files."""
        return self.rank == 0

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (``value`` itself in one process)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]

    def assign(self, pending: list) -> list:
        """This rank's items of rank 0's ``pending`` list: items rank, rank + world, ... (all in one process).

        A collective: every rank calls it with its own view of ``pending``; only rank 0's counts, so that
        chunks finished by a fast rank meanwhile cannot make two ranks disagree."""
        shared = self.broadcast(list(pending))
        return shared[self.rank::self.world]

    def barrier(self) -> None:
        """Wait until every rank got here (nothing in one process)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        if self.backend == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def chunk_written(self) -> None:
        """Count one finished chunk of this rank (and apply the kill test hook)."""
        self.chunks_written += 1
        if self._kill_after is not None and self.chunks_written >= self._kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def _device(self):
        import torch

        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


def _kill_after(rank: int) -> int | None:
    text = os.environ.get(KILL_HOOK)
    if not text:
        return None
    target, _, count = text.partition(":")
    return int(count) if int(target) == rank else None


def _environment_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer (torchrun sets it), got {text!r}") \
            from None


@contextmanager
def shard_from_environment(device: str):
    """The :class:`Shard` of this process from torchrun's environment, and the device it runs on: ``cuda``
    becomes ``cuda:LOCAL_RANK`` under several processes. Joins (and finally leaves) the process group when
    ``WORLD_SIZE`` > 1; yields ``(shard, device)``."""
    world = _environment_int("WORLD_SIZE", 1)
    if world <= 1:
        yield Shard(), device
        return
    import torch
    import torch.distributed as dist

    rank, local_rank = _environment_int("RANK", 0), _environment_int("LOCAL_RANK", 0)
    cuda = device.startswith("cuda")
    if cuda:
        if device != "cuda":
            raise ValueError(f"--device {device} names one GPU, but torchrun started {world} processes: pass "
                             "--device cuda, and each rank uses cuda:LOCAL_RANK")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"rank {rank} has LOCAL_RANK {local_rank}, but this node has "
                             f"{torch.cuda.device_count()} GPUs: start at most that many processes a node")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    backend = "nccl" if cuda else "gloo"
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group(backend, timeout=BARRIER_TIMEOUT)
    try:
        yield Shard(rank, world, local_rank, backend=backend), device
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()
