"""Entry point of each ``torchrun`` worker: ``python -m seekforge.build._ddp RUN_DIR [--resume]``.

The launching process on each machine has already written ``RUN_DIR/recipe.yaml`` and ``RUN_DIR/prepared/``;
the workers first check that every machine prepared the same data, then each trains its shard, gradients
are averaged with gloo (CPU) or nccl (CUDA), local rank 0 of each machine keeps its checkpoint, and global
rank 0 writes the trained weights.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as torch_dist

from seekforge.build._fit import fit
from seekforge.build._prepare import load_prepared
from seekforge.core.errors import DataError, SeekforgeError, TrainingInterrupted
from seekforge.core.io import write_text_atomic
from seekforge.recipe import load_recipe
from seekforge.train import DistContext, resolve_device, stop_record_path


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    resume = "--resume" in argv[1:]
    recipe = load_recipe(run_dir / "recipe.yaml")
    prepared = load_prepared(run_dir / "prepared")
    if prepared is None:
        print(f"error: {run_dir}/prepared is missing", file=sys.stderr)
        return 2
    backend = "nccl" if resolve_device(recipe.train.device).type == "cuda" else "gloo"
    torch_dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    dist = DistContext(rank=torch_dist.get_rank(), world_size=torch_dist.get_world_size(), local_rank=local_rank)
    if backend == "nccl":
        import torch

        torch.cuda.set_device(local_rank)
    try:
        _check_same_data(prepared.data_hash, len(prepared.splits["train"].target), dist)
        fit(recipe, prepared, run_dir, resume=resume, dist=dist)
        torch_dist.barrier()  # rank 0 writes the weights; no process leaves the group before it is done
    except TrainingInterrupted as exc:
        print(f"rank {dist.rank}: {exc}", file=sys.stderr)
        if dist.keeps_checkpoint:
            write_text_atomic(stop_record_path(run_dir), json.dumps({"rank": dist.rank, "message": str(exc)}))
        return exc.exit_code
    except SeekforgeError as exc:
        print(f"error (rank {dist.rank}): {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        torch_dist.destroy_process_group()
    return 0


def _check_same_data(data_hash: str, rows: int, dist: DistContext) -> None:
    """Every process must train on the same data: on several machines, each read its own copy.

    Raises:
        DataError: Some machine's data differs from global rank 0's (named by its host and ranks).
    """
    import socket

    mine = (data_hash, rows, socket.gethostname(), os.environ.get("GROUP_RANK", "0"))
    everyone: list[tuple[str, int, str, str] | None] = [None] * dist.world_size
    torch_dist.all_gather_object(everyone, mine)
    reference = everyone[0]
    assert reference is not None
    differ = [(rank, got) for rank, got in enumerate(everyone) if got is not None and got[:2] != reference[:2]]
    if differ:
        rank, got = differ[0]
        raise DataError(
            f"machine {got[2]} (node rank {got[3]}, global rank {rank}) prepared other data than node rank 0 "
            f"on {reference[2]}: {got[1]} training rows with fingerprint {got[0][:12]}, against {reference[1]} "
            f"with {reference[0][:12]}",
            hint="give every machine the same data file and recipe (or put them on a shared filesystem)",
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
