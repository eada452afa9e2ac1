"""Claim: `seekforge train`'s loop costs at most 10% more wall time than a minimal hand-written PyTorch loop
over the same model, data, batch size, optimizer and schedule.

Both loops run in this process on tensors prepared once, alternating, `--repeats` times each. The work
is deterministic and CPU-bound, so the fastest repeat is the best estimate of its cost (as `timeit`
reports); the ratio of the fastest repeats is the figure, with the ratio of medians beside it. The hand loop draws the same shuffles, so both must end with
bitwise-equal weights: the comparison is of the same arithmetic, and only bookkeeping differs
(progress, per-epoch validation metrics and metrics.jsonl, an atomic checkpoint every epoch).

    python benchmarks/trainer_overhead.py [--examples digits,breast_cancer] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from seekforge.build import build_seeded_model, model_io, prepare
from seekforge.core.hardware import hardware
from seekforge.recipe import Recipe, load_recipe
from seekforge.train import Tensors, Trainer, lr_lambda

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def hand_loop(model: torch.nn.Module, recipe: Recipe, train: Tensors, val: Tensors) -> None:
    cfg = recipe.train
    rows, batch = len(train), cfg.batch_size
    steps = -(-rows // batch) * cfg.epochs
    optimizer = cfg.optimizer.build([p for p in model.parameters() if p.requires_grad], cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps))
    torch.manual_seed(recipe.seed)
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(rows, generator=torch.Generator().manual_seed(recipe.seed * 100_003 + epoch))
        for start in range(0, rows, batch):
            index = order[start : start + batch]
            loss = F.cross_entropy(model({k: v[index] for k, v in train.inputs.items()}), train.target[index])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            logits = torch.cat(
                [model({k: v[i : i + 256] for k, v in val.inputs.items()}) for i in range(0, len(val), 256)]
            )
            F.cross_entropy(logits, val.target).item(), (logits.argmax(1) == val.target).float().mean().item()


def seekforge_loop(model: torch.nn.Module, recipe: Recipe, train: Tensors, val: Tensors, run_dir: Path) -> None:
    Trainer(model, recipe.train, task=recipe.task, seed=recipe.seed, run_dir=run_dir).fit(train, val)


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", default="digits,breast_cancer")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for example in args.examples.split(","):
            # Same work in both loops: no early stopping, and a validation pass every epoch in both.
            recipe = load_recipe(
                EXAMPLES / f"{example}.yaml",
                overrides=["train.early_stopping=null", "data.split.validation=0.1", "data.split.train=0.7"],
            )
            prepared = prepare(recipe, Path(tmp) / example)
            train, val = prepared.splits["train"], prepared.splits["validation"]
            io = model_io(recipe, prepared)
            times: dict[str, list[float]] = {"hand": [], "seekforge": []}
            finals: dict[str, dict[str, torch.Tensor]] = {}
            for repeat in range(args.repeats):
                for name in ("hand", "seekforge") if repeat % 2 == 0 else ("seekforge", "hand"):
                    model = build_seeded_model(recipe, io)
                    started = time.perf_counter()
                    if name == "hand":
                        hand_loop(model, recipe, train, val)
                    else:
                        seekforge_loop(model, recipe, train, val, Path(tmp) / example / f"run{repeat}")
                    times[name].append(time.perf_counter() - started)
                    finals[name] = model.state_dict()
            same = all(torch.equal(finals["hand"][k], finals["seekforge"][k]) for k in finals["hand"])
            hand, ours = min(times["hand"]), min(times["seekforge"])
            median = statistics.median(times["seekforge"]) / statistics.median(times["hand"])
            steps = -(-len(train) // recipe.train.batch_size) * recipe.train.epochs
            rows.append((example, recipe.model.type, steps, hand, ours, ours / hand, median, same))
    print()
    header = (
        f"{'example':<14} {'model':<6} {'steps':>6} {'hand s':>8} {'seekforge s':>12} {'ratio':>6} "
        f"{'median ratio':>13}  same weights"
    )
    print(header)
    print("-" * len(header))
    for example, model, steps, hand, ours, ratio, median, same in rows:
        print(f"{example:<14} {model:<6} {steps:>6} {hand:8.2f} {ours:12.2f} {ratio:6.3f} {median:13.3f}  {same}")
    print(f"\nworst ratio {max(r[5] for r in rows):.3f} (target <= 1.10), threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
