"""Claim: on a real objective, TPE needs at most half the trials random search needs to reach a fixed
target. The objective is the validation accuracy of an MLP on digits (see search_common.py: learning
rate, weight decay, batch size, width/depth and dropout searched; 10 epochs a trial, no pruning). For each
of 20 seeds, each sampler runs until a trial reaches the target or the trial cap; the median of the trials
needed is compared (a run that never reaches the target counts as cap + 1, which only flatters the sampler
that misses).

    python benchmarks/tpe_vs_random.py [--seeds 20] [--target 0.985] [--cap 100] [--jobs 2]

Runs are counted in trials, not timed, so ``--jobs`` runs seeds in parallel processes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time
from multiprocessing import Pool

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")

from search_common import Problem
from seekforge.core.hardware import hardware

_PROBLEM: Problem | None = None


def trials_to_reach(job: tuple[str, int, float, int]) -> tuple[str, int, int | None]:
    """(sampler, seed, trials until the target was reached, or None) in this process's own Problem."""
    global _PROBLEM
    sampler, seed, target, cap = job
    if _PROBLEM is None:
        _PROBLEM = Problem()
    study = _PROBLEM.study(sampler, "none", seed)

    def stop(study: object, trial: object) -> None:
        if getattr(trial, "value", None) is not None and trial.value >= target:  # type: ignore[attr-defined]
            study.stop()  # type: ignore[attr-defined]

    with contextlib.redirect_stderr(io.StringIO()):  # per-epoch lines
        study.optimize(_PROBLEM.objective, n_trials=cap, callbacks=[stop])
    reached = [t.number for t in study.trials if t.value is not None and t.value >= target]
    return sampler, seed, reached[0] + 1 if reached else None


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.985)
    parser.add_argument("--cap", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    jobs = [(sampler, seed, args.target, args.cap) for seed in range(args.seeds) for sampler in ("tpe", "random")]
    with Pool(args.jobs) as pool:
        got = {(sampler, seed): n for sampler, seed, n in pool.imap_unordered(trials_to_reach, jobs)}
    print(f"trials until val_accuracy >= {args.target} (cap {args.cap}; '-' = not reached)")
    print(f"{'seed':>4} {'tpe':>6} {'random':>7}")
    for seed in range(args.seeds):
        row = ["-" if got[s, seed] is None else str(got[s, seed]) for s in ("tpe", "random")]
        print(f"{seed:>4} {row[0]:>6} {row[1]:>7}")
    needed = {s: [got[s, seed] or args.cap + 1 for seed in range(args.seeds)] for s in ("tpe", "random")}
    tpe, rand = statistics.median(needed["tpe"]), statistics.median(needed["random"])
    print(f"median trials: tpe {tpe:g}, random {rand:g}; ratio tpe / random = {tpe / rand:.2f} (target <= 0.5)")
    print(f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs with {args.jobs} job(s)")


if __name__ == "__main__":
    main()
