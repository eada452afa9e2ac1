"""Attention implementations by sequence length: latency and peak memory of eager, SDPA and LSH.

Claim to check (the specification's): LSH attention cuts attention memory, to about a third of standard
attention's at 1,024 tokens. Reformer's own figures put its gains past ~4k tokens; this measures. For 512,
1,024, 2,048 and 4,096 tokens at batch 1, a scratch encoder (hidden 256, 4 heads, FFN 1,024; one layer,
then six) is built with each ``model.attention`` (``eager``, ``sdpa``, ``lsh`` with 32 buckets, 2 hashes,
chunks of 64) in its own child process, alternated: the median seconds of a forward pass without
gradients, and the rise of the peak resident memory over the process's resident memory after building the
model (measured first: a peak only grows), through a forward pass, then through a training step (forward
and backward: the training figure includes the forward's). Random tokens, random weights:
nothing here is about accuracy.

    .venv/bin/python benchmarks/attention_memory.py          # --lengths 512,1024,2048,4096 --layers 1,6
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

from children import in_child, resident_mib

LSH = {"type": "lsh", "buckets": 32, "hashes": 2, "chunk": 64}


def measure(attention: Any, tokens: int, layers: int, repeats: int, queue: Any) -> None:
    """Child: build the encoder; the peak memory of inference, then of training; then time forward passes."""
    import torch

    from seekforge.models import ModelIO, TransformerConfig

    torch.manual_seed(0)
    config = TransformerConfig(layers=layers, heads=4, hidden=256, ffn=1024, dropout=0.0, attention=attention)
    model = config.build(config.prepare_io(ModelIO(output_dim=2, vocab_size=1000, max_length=tokens)))
    batch = {
        "input_ids": torch.randint(4, 1000, (1, tokens)),
        "attention_mask": torch.ones(1, tokens, dtype=torch.long),
    }
    start = resident_mib()  # the memory runs first: a peak only grows
    model.eval()
    with torch.no_grad():
        model(batch)
    inference = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.train()
    model(batch).sum().backward()
    training = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.eval()
    seconds = []
    with torch.no_grad():
        for _ in range(repeats):
            began = time.perf_counter()
            model(batch)
            seconds.append(time.perf_counter() - began)
    queue.put({"s": statistics.median(seconds), "infer_mib": inference - start, "train_mib": training - start})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="512,1024,2048,4096")
    parser.add_argument("--layers", default="1,6")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)
    kinds = {"eager": "eager", "sdpa": "sdpa", "lsh": LSH}
    print(f"{'layers':>6} {'tokens':>6} {'':<6} {'s forward':>10} {'infer MiB':>10} {'train MiB':>10}")
    for layers in map(int, args.layers.split(",")):
        for tokens in map(int, args.lengths.split(",")):
            found = {name: in_child(measure, kind, tokens, layers, args.repeats) for name, kind in kinds.items()}
            for name, row in found.items():
                print(f"{layers:>6} {tokens:>6} {name:<6} {row['s']:>10.4f} {row['infer_mib']:>10.1f} "
                      f"{row['train_mib']:>10.1f}", flush=True)  # fmt: skip
            lsh, sdpa, eager = found["lsh"], found["sdpa"], found["eager"]
            print(f"{'':>13} lsh / sdpa: time {lsh['s'] / sdpa['s']:.2f}, training memory "
                  f"{lsh['train_mib'] / max(sdpa['train_mib'], 0.1):.2f}; lsh / eager: training memory "
                  f"{lsh['train_mib'] / max(eager['train_mib'], 0.1):.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
