"""Claim: on the reviews classifier (all-MiniLM-L6-v2, examples/reviews.yaml's split and epochs), LoRA
reaches at least 99% of full fine-tuning's test accuracy with at most 2% of the parameters trainable (the
head counted), and its fine-tuning step is faster and its peak memory lower than full fine-tuning's.

Both fine-tunes run through ``seekforge finetune``'s recipe in this script, one after the other, each in a
child process (so each one's peak resident memory is its own). The step figures come from separate
children that time optimizer steps on one batch (32 reviews of 128 tokens), full and LoRA alternated over
``--rounds`` rounds; the medians are compared.

    python benchmarks/finetune_lora.py [--rank 16] [--targets query,value] [--dropout 0.1] [--lr 1e-3]
        [--epochs 2] [--steps 12] [--rounds 2] [--skip-runs] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from children import in_child

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def short_recipe(args: argparse.Namespace, adapter: str) -> dict[str, Any]:
    """examples/reviews.yaml in the fine-tuning recipe's shape: the same data, split, epochs and batch."""
    model: dict[str, Any] = {"base": "builtin:minilm", "adapter": adapter, "max_length": 128}
    if adapter == "lora":
        model.update(rank=args.rank, dropout=args.dropout, target_modules=args.targets.split(","))
    return {
        "name": f"reviews-{adapter}",
        "seed": 0,
        "model": model,
        "data": {
            "path": "builtin:reviews",
            "test": "builtin:reviews/test",
            "text": "review",
            "label": "score",
            "split": {"train": 0.9, "validation": 0.1, "test": 0.0},
        },
        "training": {
            "epochs": args.epochs,
            "batch_size": 32,
            "lr": args.lr if adapter == "lora" else 5e-5,
            "warmup_steps": args.warmup_steps,
        },
    }


def fine_tune(recipe: dict[str, Any], runs: str, queue: Any) -> None:
    """Child: one whole fine-tune; its manifest's figures and this process's peak resident memory."""
    import yaml

    from seekforge.core.package import read_manifest
    from seekforge.finetune import load_finetune_recipe
    from seekforge.pipeline import run

    path = Path(runs) / f"{recipe['name']}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    started = time.perf_counter()
    result = run(load_finetune_recipe(path), runs_dir=runs)
    manifest = read_manifest(result.package)
    queue.put({
        "accuracy": result.metrics["accuracy"],
        "trainable": manifest["model"]["trainable"],
        "parameters": manifest["model"]["parameters"],
        "train_s": manifest["training"]["seconds"],
        "wall_s": time.perf_counter() - started,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "weights_bytes": (result.package / "model.safetensors").stat().st_size,
        "package": str(result.package),
    })  # fmt: skip


def time_steps(recipe: dict[str, Any], steps: int, queue: Any) -> None:
    """Child: optimizer steps of the recipe's model on one batch; median seconds a step, peak memory."""
    import torch

    from seekforge.finetune import load_finetune_recipe
    from seekforge.models import ModelIO

    with tempfile.TemporaryDirectory() as tmp:
        import yaml

        path = Path(tmp) / "r.yaml"
        path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
        config = load_finetune_recipe(path).model
    io = config.prepare_io(ModelIO(output_dim=2, vocab_size=30522, max_length=128))
    torch.manual_seed(0)
    model = config.build(io).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(1000, 20000, (32, 128), generator=generator),
             "attention_mask": torch.ones(32, 128, dtype=torch.long)}  # fmt: skip
    target = torch.randint(0, 2, (32,), generator=generator)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(batch), target).backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"step_s": statistics.median(seconds[2:]), "peak_mib": peak, "model_mib": before})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--targets", default="query,value")
    parser.add_argument("--dropout", type=float, default=0.1, help="LoRA dropout")
    parser.add_argument("--lr", type=float, default=1e-3, help="LoRA's learning rate (full fine-tuning: 5e-5)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=23, help="default: 10%% of 2 epochs' steps")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-runs", action="store_true", help="only the step timing")
    parser.add_argument("--keep", type=Path, help="write the run folders here (kept) instead of a temporary folder")
    args = parser.parse_args()

    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    recipes = {name: short_recipe(args, name) for name in ("none", "lora")}
    steps: dict[str, list[dict[str, Any]]] = {"none": [], "lora": []}
    for _ in range(args.rounds):
        for name, recipe in recipes.items():
            steps[name].append(in_child(time_steps, recipe, args.steps))
    step = {name: statistics.median(r["step_s"] for r in rows) for name, rows in steps.items()}
    peak = {name: max(r["peak_mib"] for r in rows) for name, rows in steps.items()}
    print("\nfine-tuning step (32 reviews x 128 tokens, AdamW), median of the rounds")
    print(f"{'':<6} {'s / step':>9} {'peak RSS MiB':>13}")
    for name, label in (("none", "full"), ("lora", "LoRA")):
        print(f"{label:<6} {step[name]:>9.3f} {peak[name]:>13.0f}")
    print(
        f"ratio LoRA / full: step time {step['lora'] / step['none']:.2f}, peak memory {peak['lora'] / peak['none']:.2f}"
    )
    if args.skip_runs:
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = str(args.keep) if args.keep is not None else tmp
        Path(runs).mkdir(parents=True, exist_ok=True)
        found = {name: in_child(fine_tune, recipe, runs) for name, recipe in recipes.items()}
    print(f"\nreviews: {args.epochs} epochs, LoRA rank {args.rank} on {args.targets}, lr {args.lr} (full: 5e-05)")
    header = f"{'':<6} {'accuracy':>9} {'trainable':>11} {'of':>12} {'share':>7} {'train s':>8} {'peak RSS MiB':>13} {'weights MB':>11}"
    print(header)
    for name, label in (("none", "full"), ("lora", "LoRA")):
        r = found[name]
        share = 100 * r["trainable"] / r["parameters"]
        print(f"{label:<6} {r['accuracy']:>9.4f} {r['trainable']:>11,} {r['parameters']:>12,} {share:>6.2f}% "
              f"{r['train_s']:>8.0f} {r['peak_mib']:>13.0f} {r['weights_bytes'] / 1e6:>11.2f}")  # fmt: skip
    ratio = found["lora"]["accuracy"] / found["none"]["accuracy"]
    share = found["lora"]["trainable"] / found["lora"]["parameters"]
    print(f"LoRA / full accuracy: {ratio:.4f} (target >= 0.99): {'met' if ratio >= 0.99 else 'NOT met'}")
    print(f"LoRA trainable share: {100 * share:.2f}% (target <= 2%): {'met' if share <= 0.02 else 'NOT met'}")
    print(f"packages: full {found['none']['package']}, LoRA {found['lora']['package']}")
    print(f"LoRA / full training seconds: {found['lora']['train_s'] / found['none']['train_s']:.2f}; "
          f"peak memory of the whole run: {found['lora']['peak_mib'] / found['none']['peak_mib']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
