"""Claim: Hyperband pruning reaches the same accuracy as no pruning while spending at least 50% fewer
training epochs. Successive halving (one Hyperband bracket, ASHA; ``pruner: successive_halving``) runs
beside it: Hyperband also runs brackets that stop trials later, a hedge for objectives whose first epochs
mislead.

Same objective as tpe_vs_random.py (an MLP on digits, 10 epochs a trial unless pruned; ``--epochs`` sets
another most), TPE sampler in every study. For each seed, each study runs until a trial reaches the
target validation accuracy (or the trial cap); the epochs it trained until then are counted from its
trials' per-epoch reports. A study that never reaches the target counts every epoch it spent, which only
flatters the pruner that misses.

    python benchmarks/hyperband_vs_none.py [--seeds 10] [--target 0.9815] [--cap 120] [--jobs 2] [--sampler tpe]
        [--epochs 10] [--checks 1]
    python benchmarks/hyperband_vs_none.py --trials 60 [--seeds 10] [--jobs 2]

``--checks N`` sets ``tune.checks_per_epoch`` for the pruned studies: each trial reports N validation
checks an epoch, and the pruners' resource is a check (a pruned trial may have trained a fraction of an
epoch, which is what is counted). The unpruned study keeps one check an epoch, as `seekforge tune` requires.

``--trials N`` asks the question the other way round: every study runs exactly N trials, and the table
gives the epochs each spent and the best validation accuracy it found, so the saving is read at the
accuracy each pruner actually reached rather than at a fixed target.

Studies are counted in epochs, not timed, so ``--jobs`` runs them in parallel processes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time
from multiprocessing import Pool
from typing import Any

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")

from search_common import EPOCHS, Problem
from seekforge.core.hardware import hardware

_PROBLEMS: dict[int, Problem] = {}  # by checks an epoch, made once in each process
PRUNERS = ("none", "hyperband", "successive_halving")


def epochs_to_reach(job: tuple[str, str, int, float, int, int, int, int]) -> dict[str, Any]:
    """One study (sampler, pruner, seed) in this process's own Problem: epochs and trials until the target,
    or, with a fixed number of trials, the epochs they spent and the best value they found."""
    sampler, pruner, seed, target, cap, epochs, fixed, checks = job
    checks = 1 if pruner == "none" else checks  # nothing reads checks within an epoch without a pruner
    if checks not in _PROBLEMS:
        _PROBLEMS[checks] = Problem(epochs, checks)
    problem = _PROBLEMS[checks]
    study = problem.study(sampler, pruner, seed)

    def stop(study: Any, trial: Any) -> None:
        if trial.value is not None and trial.value >= target:
            study.stop()

    with contextlib.redirect_stderr(io.StringIO()):  # per-epoch lines
        study.optimize(problem.objective, n_trials=fixed or cap, callbacks=[] if fixed else [stop])
    return {
        "pruner": pruner,
        "seed": seed,
        # epochs trained, as the trials record them: a fraction for one stopped within an epoch
        "epochs": round(sum(t.user_attrs.get("epochs", 0) for t in study.trials), 1),
        "trials": len(study.trials),
        "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "checks": sum(len(t.intermediate_values) for t in study.trials),  # passes over the validation split
        "reached": any(t.value is not None and t.value >= target for t in study.trials),
        "best": study.best_value,
    }


def passes(got: dict[tuple[str, int], dict[str, Any]], pruner: str, seeds: int) -> str:
    """Validation passes a pruner's studies made, against no pruning's."""
    return (f"validation passes {sum(got[pruner, s]['checks'] for s in range(seeds))} "
            f"vs {sum(got['none', s]['checks'] for s in range(seeds))}")  # fmt: skip


def report_to_target(got: dict[tuple[str, int], dict[str, Any]], args: argparse.Namespace) -> None:
    """Per seed: epochs (trials) until the target for each pruner; then the medians and totals."""
    print(f"{args.sampler} sampler, at most {args.epochs} epochs a trial; epochs (trials) until val_accuracy >= "
          f"{args.target}; cap {args.cap} trials, '*' = not reached")  # fmt: skip
    print(f"{'seed':>4} {'none':>12} {'hyperband':>12} {'succ. halving':>14}")
    for seed in range(args.seeds):
        cells = []
        for pruner in PRUNERS:
            r = got[pruner, seed]
            cells.append(f"{r['epochs']:g}{'' if r['reached'] else '*'} ({r['trials']})")
        print(f"{seed:>4} {cells[0]:>12} {cells[1]:>12} {cells[2]:>14}")
    epochs = {p: [got[p, s]["epochs"] for s in range(args.seeds)] for p in PRUNERS}
    for pruner in PRUNERS[1:]:
        median = statistics.median(epochs[pruner]) / statistics.median(epochs["none"])
        total = sum(epochs[pruner]) / sum(epochs["none"])
        print(f"{pruner}: median epochs {statistics.median(epochs[pruner]):g} vs {statistics.median(epochs['none']):g}, "
              f"{1 - median:.0%} fewer (target >= 50%); total {sum(epochs[pruner]):g} vs {sum(epochs['none']):g}, "
              f"{1 - total:.0%} fewer; {passes(got, pruner, args.seeds)}")  # fmt: skip


def report_fixed_trials(got: dict[tuple[str, int], dict[str, Any]], seeds: int, trials: int) -> None:
    """Per seed: epochs spent and best val_accuracy for each pruner; then the medians."""
    print(f"{trials} trials a study; epochs spent / best val_accuracy")
    print(f"{'seed':>4} {'none':>14} {'hyperband':>14} {'succ. halving':>14}")
    for seed in range(seeds):
        cells = [f"{got[p, seed]['epochs']:g} / {got[p, seed]['best']:.4f}" for p in PRUNERS]
        print(f"{seed:>4} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14}")
    epochs = {p: [got[p, s]["epochs"] for s in range(seeds)] for p in PRUNERS}
    best = {p: [got[p, s]["best"] for s in range(seeds)] for p in PRUNERS}
    for pruner in PRUNERS[1:]:
        fewer = 1 - sum(epochs[pruner]) / sum(epochs["none"])
        gaps = [b - n for b, n in zip(best[pruner], best["none"], strict=True)]
        print(f"{pruner}: epochs {sum(epochs[pruner]):g} vs {sum(epochs['none']):g}, {fewer:.0%} fewer (target >= 50%); "
              f"median best {statistics.median(best[pruner]):.4f} vs {statistics.median(best['none']):.4f}; "
              f"best minus none's per seed: median {statistics.median(gaps):+.4f}, worst {min(gaps):+.4f}; "
              f"{passes(got, pruner, seeds)}")  # fmt: skip


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.9815)
    parser.add_argument("--cap", type=int, default=120)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="the most epochs a trial trains")
    parser.add_argument("--checks", type=int, default=1, help="validation checks an epoch (tune.checks_per_epoch)")
    parser.add_argument("--trials", type=int, default=0, help="run exactly this many trials a study (no target)")
    args = parser.parse_args()
    started = time.perf_counter()
    study = (args.sampler, args.target, args.cap, args.epochs, args.trials, args.checks)
    jobs = [(study[0], p, seed, *study[1:]) for seed in range(args.seeds) for p in PRUNERS]
    with Pool(args.jobs) as pool:
        got = {(r["pruner"], r["seed"]): r for r in pool.imap_unordered(epochs_to_reach, jobs)}
    if args.trials:
        report_fixed_trials(got, args.seeds, args.trials)
    else:
        report_to_target(got, args)
    print(f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs with {args.jobs} job(s)")


if __name__ == "__main__":
    main()
