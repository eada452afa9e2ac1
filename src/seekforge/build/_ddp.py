"""Entry point of each ``torchrun`` worker: ``python -m seekforge.build._ddp RUN_DIR [--resume]``.

The launching process has already written ``RUN_DIR/recipe.yaml`` and ``RUN_DIR/prepared/``; every
worker trains its shard, gradients are averaged with gloo (CPU) or nccl (CUDA), and rank 0 writes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch.distributed as torch_dist

from seekforge.build._fit import fit
from seekforge.build._prepare import load_prepared
from seekforge.core.errors import SeekforgeError, TrainingInterrupted
from seekforge.recipe import load_recipe
from seekforge.train import DistContext, resolve_device


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
    dist = DistContext(rank=torch_dist.get_rank(), world_size=torch_dist.get_world_size())
    if backend == "nccl":
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    try:
        fit(recipe, prepared, run_dir, resume=resume, dist=dist)
        torch_dist.barrier()  # rank 0 writes the weights; no process leaves the group before it is done
    except TrainingInterrupted as exc:
        print(f"rank {dist.rank}: {exc}", file=sys.stderr)
        return exc.exit_code
    except SeekforgeError as exc:
        print(f"error (rank {dist.rank}): {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        torch_dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
