"""Claim: Hyperband pruning reaches the same best accuracy as no pruning while spending at least 50% fewer
training epochs. Same objective as tpe_vs_random.py (an MLP on digits, 10 epochs a trial), TPE sampler,
the same number of trials with and without pruning, for several seeds. Epochs are counted from each
trial's per-epoch reports. Beside the totals: the epochs each study had spent when it first reached the
no-pruning study's best accuracy (rounded down to the target given).

    python benchmarks/hyperband_vs_none.py [--seeds 3] [--trials 40] [--target 0.978]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")

from search_common import Problem


def run(problem: Problem, pruner: str, seed: int, trials: int, target: float) -> dict[str, float]:
    study = problem.study("tpe", pruner, seed)
    with contextlib.redirect_stderr(io.StringIO()):
        study.optimize(problem.objective, n_trials=trials)
    spent, until = 0, None
    for trial in study.trials:
        spent += len(trial.intermediate_values)
        if until is None and trial.value is not None and trial.value >= target:
            until = spent
    pruned = sum(t.state.name == "PRUNED" for t in study.trials)
    return {"best": study.best_value, "epochs": spent, "until": until or float("nan"), "pruned": pruned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--target", type=float, default=0.978)
    args = parser.parse_args()
    problem = Problem()
    started = time.perf_counter()
    totals = {"none": 0, "hyperband": 0}
    until: dict[str, list[float]] = {"none": [], "hyperband": []}
    best: dict[str, list[float]] = {"none": [], "hyperband": []}
    print(f"{args.trials} TPE trials a study; epochs until val_accuracy >= {args.target} in 'until'")
    print(f"{'seed':>4} {'pruner':>10} {'best':>7} {'epochs':>7} {'until':>6} {'pruned':>7}")
    for seed in range(args.seeds):
        for pruner in ("none", "hyperband"):
            got = run(problem, pruner, seed, args.trials, args.target)
            totals[pruner] += int(got["epochs"])
            until[pruner].append(got["until"])
            best[pruner].append(got["best"])
            print(f"{seed:>4} {pruner:>10} {got['best']:>7.4f} {got['epochs']:>7.0f} {got['until']:>6.0f} "
                  f"{got['pruned']:>7.0f}", flush=True)  # fmt: skip
    saved = 1 - totals["hyperband"] / totals["none"]
    same = sum(h >= n for h, n in zip(best["hyperband"], best["none"], strict=True))
    print(f"best accuracy: hyperband as good or better on {same} of {args.seeds} seeds")
    print(f"epochs over the whole budget: none {totals['none']}, hyperband {totals['hyperband']}; "
          f"{saved:.0%} fewer (target >= 50%)")  # fmt: skip
    both = [(n, h) for n, h in zip(until["none"], until["hyperband"], strict=True) if n == n and h == h]
    if both:
        spent = [sum(x) for x in zip(*both, strict=True)]
        print(f"epochs until val_accuracy >= {args.target}, on the {len(both)} seeds where both got there: "
              f"none {spent[0]:.0f}, hyperband {spent[1]:.0f}; {1 - spent[1] / spent[0]:.0%} fewer")  # fmt: skip
    print(f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
