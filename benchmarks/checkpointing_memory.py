"""Gradient checkpointing on the MiniLM fine-tune: peak memory and seconds a step, with and without.

Claim: at batch 32 x 128 tokens, recomputing each encoder layer's activations in the backward pass
(``train.gradient_checkpointing: true``) lowers the peak memory of a fine-tuning step, for more time a step.
Each setting runs in its own child process (its peak resident memory is its own), alternated, ``--rounds``
times: the child builds the reviews classifier's model (all-MiniLM-L6-v2, every weight trained, AdamW) and
times ``--steps`` optimizer steps on one batch of random tokens; the peak is the child's whole run, less
its resident memory before the first step. Beside them, the estimate ``gradient_checkpointing: auto``
decides by (``seekforge.train.training_bytes``).

    .venv/bin/python benchmarks/checkpointing_memory.py        # --batch 32 --tokens 128 --steps 6 --rounds 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

from children import in_child


def steps(checkpointed: bool, args: argparse.Namespace, queue: Any) -> None:
    """Child: optimizer steps of the MiniLM classifier on one batch; median seconds a step, memory."""
    import torch

    from seekforge.models import ModelIO, TransformerConfig
    from seekforge.train import training_bytes

    config = TransformerConfig(pretrained="builtin:minilm")
    io = config.prepare_io(ModelIO(output_dim=2, vocab_size=30522, max_length=args.tokens))
    torch.manual_seed(0)
    model = config.build(io).train()
    generator = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(1000, 20000, (args.batch, args.tokens), generator=generator),
             "attention_mask": torch.ones(args.batch, args.tokens, dtype=torch.long)}  # fmt: skip
    estimate = training_bytes(model, {k: v[:2] for k, v in batch.items()}, micro_batch=args.batch, optimizer="adamw",
                              checkpointed=checkpointed)  # fmt: skip
    model.checkpoint_layers(checkpointed)
    target = torch.randint(0, 2, (args.batch,), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = []
    for _ in range(args.steps):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(batch), target).backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"step_s": statistics.median(seconds[1:]), "peak_mib": peak, "rise_mib": peak - before,
               "estimate_mib": estimate / 2**20})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)
    print(f"MiniLM classifier, every weight trained (AdamW); batch {args.batch} x {args.tokens} tokens")
    found: dict[str, list[dict[str, Any]]] = {"plain": [], "checkpointed": []}
    for _ in range(args.rounds):
        for name in found:
            found[name].append(in_child(steps, name == "checkpointed", args))
    rows = {n: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for n, runs in found.items()}
    print(f"{'':<13} {'s / step':>9} {'peak RSS MiB':>13} {'rise MiB':>9} {'estimate MiB':>13}")
    for name, row in rows.items():
        print(f"{name:<13} {row['step_s']:>9.3f} {row['peak_mib']:>13.1f} {row['rise_mib']:>9.1f} "
              f"{row['estimate_mib']:>13.1f}")  # fmt: skip
    plain, ours = rows["plain"], rows["checkpointed"]
    print(f"checkpointed / plain: peak RSS {ours['peak_mib'] / plain['peak_mib']:.2f}, rise during the steps "
          f"{ours['rise_mib'] / plain['rise_mib']:.2f}, seconds a step {ours['step_s'] / plain['step_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
