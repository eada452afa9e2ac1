"""QLoRA against LoRA on a causal LM: the model's bytes in memory, peak resident memory, seconds a step.

Claim: with the base held in 4 bits (NF4, double quantization), the model takes a fraction of its float32
size in memory while its adapters train; on a CPU the step costs more time (bitsandbytes dequantizes each
quantized layer's weights at every forward and backward). Reported beside it: the memory the loaded model
holds (resident memory after loading, less before), the peak while loading, and the peak of the whole run.

The model is a Llama-shaped causal LM with random weights built from a config (``--hidden``, ``--layers``,
...): memory and time do not depend on what the weights have learned, and this is no claim about quality.
Each setting runs in its own child process (its peak resident memory is its own), alternated, ``--rounds``
times; a child loads the base through ``seekforge.finetune``'s loader with LoRA on q_proj and v_proj, then
times AdamW steps on one batch of random tokens.

    .venv/bin/python benchmarks/finetune_qlora.py          # --hidden 1024 --layers 8 --steps 8 --rounds 2
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from children import in_child, resident_mib


def build_base(folder: Path, args: argparse.Namespace) -> int:
    """A random Llama-shaped model and a word-level tokenizer over its vocabulary, saved in ``folder``;
    returns its parameter count."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3} | {f"w{i}": i for i in range(4, args.vocab)}
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                                bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")  # fmt: skip
    fast.save_pretrained(folder)
    config = transformers.LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.ffn,
                                      num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                                      num_key_value_heads=max(1, args.hidden // 256), max_position_embeddings=4096)  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def steps(base: str, adapter: str, args: argparse.Namespace, queue: Any) -> None:
    """Child: load the base with ``adapter``, then time AdamW steps on one batch."""
    import torch

    from seekforge.finetune import CausalModel
    from seekforge.finetune._causal_package import load_base

    before = resident_mib()
    model, _, _ = load_base(CausalModel(base=base, adapter=adapter, rank=16, dropout=0.0))
    loaded = resident_mib()
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(4, args.vocab, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    seconds = []
    for _ in range(args.steps):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    queue.put({
        "model_mib": model.get_memory_footprint() / 2**20,
        "held_mib": loaded - before,
        "load_peak_mib": load_peak,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_s": statistics.median(seconds[1:]),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--ffn", type=int, default=2816)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from seekforge.finetune import qlora_problem

    if (problem := qlora_problem()) is not None:
        raise SystemExit(f"QLoRA cannot run here: {problem}")
    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)  # bitsandbytes' CPU path differs with AVX-512 BF16
    found: dict[str, list[dict[str, Any]]] = {"lora": [], "qlora": []}
    with tempfile.TemporaryDirectory() as tmp:
        count = build_base(Path(tmp), args)
        print(f"base: random Llama, {count / 1e6:.1f}M parameters ({args.layers} layers, hidden {args.hidden}, "
              f"vocabulary {args.vocab}); batch {args.batch} x {args.tokens} tokens; {platform.machine()}")  # fmt: skip
        for _ in range(args.rounds):
            for adapter in found:
                found[adapter].append(in_child(steps, tmp, adapter, args))
    rows = {a: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for a, runs in found.items()}
    print(f"{'':<6} {'model MiB':>10} {'RSS held MiB':>13} {'load peak MiB':>14} {'peak RSS MiB':>13} {'s / step':>9} "
          f"{'trainable':>10}")  # fmt: skip
    for adapter, row in rows.items():
        print(f"{adapter:<6} {row['model_mib']:>10.1f} {row['held_mib']:>13.1f} {row['load_peak_mib']:>14.1f} "
              f"{row['peak_mib']:>13.1f} {row['step_s']:>9.3f} {int(row['trainable']):>10,}")  # fmt: skip
    lora, qlora = rows["lora"], rows["qlora"]
    print(f"QLoRA / LoRA: model in memory {qlora['model_mib'] / lora['model_mib']:.2f}, resident after loading "
          f"{qlora['held_mib'] / lora['held_mib']:.2f}, peak RSS "
          f"{qlora['peak_mib'] / lora['peak_mib']:.2f}, seconds a step {qlora['step_s'] / lora['step_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
