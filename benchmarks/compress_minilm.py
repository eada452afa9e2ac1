"""Claims on the reviews classifier (all-MiniLM-L6-v2 fine-tuned by examples/reviews.yaml; 1,000 test
reviews):

1. Pruning half the attention heads and half the FFN width of every layer (``--prune 0.5 --importance
   taylor --distill``, recovery fine-tuning that distils from the unpruned model) loses at most 1.5
   accuracy points; the
   latency ratio to the parent is reported (torch and onnxruntime, batch 1 and 32, as compress measures).
2. Distillation into a student with at most 25% of the teacher's parameters keeps at least 97% of the
   teacher's accuracy. The default student (``--student truncated``) is the teacher cut down: its first 2
   encoder layers (``keep_layers``), its token table factorised to rank 128 (``token_rank``) and trimmed to
   the tokens the training reviews use (``vocabulary: training``), all started from the fine-tuned
   teacher's weights; it learns from the teacher's softened outputs and the labels. ``--student scratch``
   is a 2-layer transformer trained from scratch (hidden 128, 4 heads, FFN 512) whose token and position
   embeddings start from the teacher's, projected on their 128 leading principal axes. ``--student
   pruned`` keeps all 6 layers and narrows them instead, in two compress steps: the teacher's token table
   factorised and trimmed as above (``--table-epochs`` of distillation), then ``--student-prune`` of its
   heads and FFN width removed by Taylor importance, with ``--student-epochs`` of recovery fine-tuning that
   distils from the step before: the student that meets the claim (benchmarks/README.md).

    python benchmarks/compress_minilm.py [--package runs/reviews/<stamp>/package] [--finetune-epochs 1]
        [--importance magnitude|taylor|lamp] [--student truncated|scratch|pruned] [--student-epochs 20]
        [--student-layers 2] [--token-rank 128] [--student-start teacher|own] [--lr LR]
        [--table-epochs 1] [--student-prune 0.6666]
        [--augment COPIES] [--skip prune|student] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")

from seekforge.compress import CompressConfig, VariantRow, compress_package
from seekforge.core.hardware import hardware
from seekforge.pipeline import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRATCH = {"type": "transformer", "layers": 2, "heads": 4, "hidden": 128, "ffn": 512, "dropout": 0.1}
TRUNCATED = {"type": "transformer", "pretrained": "builtin:minilm", "keep_layers": 2, "token_rank": 128,
             "vocabulary": "training"}  # fmt: skip


def show(rows: list[VariantRow]) -> None:
    print(
        f"{'variant':<14} {'parameters':>11} {'accuracy':>9} {'drop pt':>8} {'torch ms b1/b32':>17} {'ORT ms b1/b32':>15}"
    )
    for row in rows:
        torch_ms = f"{row.torch_ms_batch1:.1f}/{row.torch_ms_batch32:.0f}"
        ort_ms = (
            f"{row.onnxruntime_ms_batch1:.1f}/{row.onnxruntime_ms_batch32:.0f}" if row.onnxruntime_ms_batch1 else "-"
        )
        print(
            f"{row.name:<14} {row.parameters:>11,} {row.metric:>9.4f} {100 * row.drop:>8.2f} {torch_ms:>17} {ort_ms:>15}"
        )


def side_by_side(parent: Path, pruned: Path, rounds: int, seconds: float) -> dict[tuple[str, str, int], float]:
    """p50 latency (ms) of both packages on torch and onnxruntime at batch 1 and 32, timed in alternation
    for ``rounds`` rounds in this process, the median of the rounds kept: noise hits both alike."""
    from seekforge.export import bench_package

    times: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(rounds):
        for name, package in (("parent", parent), ("pruned", pruned)):
            for row in bench_package(package, backends=["torch", "onnxruntime"], batches=(1, 32), seconds=seconds):
                times.setdefault((name, row.backend, row.batch), []).append(row.p50_ms)
    return {key: statistics.median(values) for key, values in times.items()}


def pruned_student(package: Path, runs: Path, args: argparse.Namespace) -> None:
    """A student that keeps the teacher's depth: its token table factorised and trimmed, then its heads and
    FFN width pruned, each step distilled from the one before; its size and accuracy against the teacher's."""
    table = {**TRUNCATED, "keep_layers": None, "token_rank": args.token_rank}
    first = CompressConfig(
        distill={"student": {"model": table}, "epochs": args.table_epochs, "student_start": "teacher"}, lr=args.lr
    )
    factorised = compress_package(package, first, runs_dir=runs, seconds=args.seconds)
    print("\nstep 1, the token table factorised:")
    show(factorised.rows)
    distill: dict[str, object] = {"augment": {"copies": args.augment}} if args.augment else {}
    prune = {"ratio": args.student_prune, "finetune_epochs": args.student_epochs, "importance": args.importance}
    second = CompressConfig(prune=prune, distill=distill, lr=args.lr)
    narrowed = compress_package(factorised.package, second, runs_dir=runs, seconds=args.seconds)
    print(f"\nstep 2, {args.student_prune:.0%} of the heads and FFN width pruned:")
    show(narrowed.rows)
    teacher, small = factorised.rows[0], narrowed.rows[-1]
    print(f"student parameters {small.parameters / teacher.parameters:.1%} of the teacher's (target <= 25%); "
          f"accuracy {small.metric:.4f}, {small.metric / teacher.metric:.1%} of the teacher's (target >= 97%)")  # fmt: skip


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--student", choices=["truncated", "scratch", "pruned"], default="truncated")
    parser.add_argument("--table-epochs", type=int, default=1, help="the pruned student's first step")
    parser.add_argument(
        "--student-prune", type=float, default=0.6666,
        help="share of heads and FFN width the pruned student loses (0.6666 leaves 4 of 12 heads, FFN 512)",
    )  # fmt: skip
    parser.add_argument("--student-epochs", type=int, default=20)
    parser.add_argument("--student-layers", type=int, default=2)
    parser.add_argument("--token-rank", type=int, default=128, help="the truncated student's token table rank")
    parser.add_argument("--lr", type=float, help="the student's learning rate (default: the recipe's)")
    parser.add_argument("--skip", choices=["prune", "student"])
    parser.add_argument("--importance", choices=["magnitude", "taylor", "lamp"], default="taylor")
    parser.add_argument(
        "--student-start", choices=["teacher", "own"], default="teacher",
        help="start the student from the teacher's weights, or from its own (pretrained or random) start",
    )  # fmt: skip
    parser.add_argument(
        "--augment", type=int, default=0,
        help="the student also learns the teacher on this many altered copies of each training review",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds of parent and pruned")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch) / "runs"
        package = args.package or run(EXAMPLES / "reviews.yaml", runs_dir=runs).package
        if args.skip != "prune":
            prune = {"ratio": 0.5, "finetune_epochs": args.finetune_epochs, "importance": args.importance}
            config = CompressConfig(prune=prune, distill={})
            pruned = compress_package(package, config, runs_dir=runs, seconds=args.seconds)
            base, small = pruned.rows[0], pruned.rows[-1]
            print("\npruning half the heads and FFN width:")
            show(pruned.rows)
            print(f"accuracy drop {100 * small.drop:.2f} points (target <= 1.5); parameters "
                  f"{small.parameters / base.parameters:.0%} of the parent's, MACs {small.macs / base.macs:.0%}")  # fmt: skip
            ms = side_by_side(pruned.work_dir / "parent", pruned.package, args.rounds, args.seconds)
            print(f"p50 latency, parent vs pruned, timed in alternation ({args.rounds} rounds, median):")
            for backend in ("torch", "onnxruntime"):
                for batch in (1, 32):
                    a, b = ms["parent", backend, batch], ms["pruned", backend, batch]
                    print(f"  {backend:<12} batch {batch:>2}: {a:8.2f} ms vs {b:8.2f} ms, {a / b:.2f}x faster")
        if args.skip != "student" and args.student == "pruned":
            pruned_student(package, runs, args)
        elif args.skip != "student":
            if args.student == "truncated":
                student_model = {**TRUNCATED, "keep_layers": args.student_layers, "token_rank": args.token_rank}
            else:
                student_model = {**SCRATCH, "layers": args.student_layers}
            distill = {
                "student": {"model": student_model},
                "epochs": args.student_epochs,
                "student_start": args.student_start,
            }
            if args.augment:
                distill["augment"] = {"copies": args.augment}
            config = CompressConfig(distill=distill, lr=args.lr)
            student = compress_package(package, config, runs_dir=runs, seconds=args.seconds)
            base, small = student.rows[0], student.rows[-1]
            print("\ndistillation into a small student:")
            show(student.rows)
            print(f"student parameters {small.parameters / base.parameters:.1%} of the teacher's (target <= 25%); "
                  f"accuracy {small.metric / base.metric:.1%} of the teacher's (target >= 97%)")  # fmt: skip
    print(f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
