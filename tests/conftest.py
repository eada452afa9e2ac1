from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
import yaml

import seekforge

if TYPE_CHECKING:
    from seekforge.export import ExportConfig, ExportResult

os.environ["SEEKFORGE_NO_PROGRESS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_tabular(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """A small learnable table: two numbers, a category and a flag decide the label."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.normal(size=rows)
    city = rng.choice(["paris", "oslo", "rome"], size=rows)
    member = rng.choice(["yes", "no"], size=rows)
    score = 1.5 * x1 - x2 + (city == "oslo") * 1.0 + (member == "yes") * 0.5
    label = np.where(score > 0.3, "buy", "skip")
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "city": city, "member": member, "label": label})


def tabular_recipe(source: str, **train: object) -> dict[str, object]:
    return {
        "name": "tiny",
        "seed": 0,
        "data": {"source": source, "split": {"train": 0.7, "validation": 0.15, "test": 0.15}},
        "features": {
            "inputs": [
                {"name": "x1", "type": "numeric"},
                {"name": "x2", "type": "numeric"},
                {"name": "city", "type": "category"},
                {"name": "member", "type": "binary"},
            ],
            "output": {"name": "label", "type": "binary"},
        },
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.01, **train},
    }


def text_recipe(source: str, *, output: str = "binary", hidden: int = 32, **train: object) -> dict[str, object]:
    """A tiny scratch text transformer over ``review`` -> ``score``."""
    return {
        "name": "txt",
        "data": {"source": source},
        "features": {
            "inputs": [{"name": "review", "type": "text", "max_length": 16}],
            "output": {"name": "score", "type": output},
        },
        "model": {"type": "transformer", "layers": 1, "heads": 2, "hidden": hidden, "ffn": 2 * hidden},
        "train": {"epochs": 3, "batch_size": 16, "lr": 0.003, **train},
    }


def image_folder_recipe(root: Path, *, per_class: int = 20, epochs: int = 4) -> dict[str, object]:
    """A folder of small PNGs under ``root/img``, one sub-folder per class (``dark``, ``light``), and a tiny
    CNN recipe over it."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("light", 200)):
        (root / "img" / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(level, 20, size=(10, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "img" / label / f"{i}.png")
    return {
        "name": "img",
        "data": {"source": str(root / "img"), "split": {"train": 0.6, "validation": 0.2, "test": 0.2}},
        "features": {
            "inputs": [{"name": "image", "type": "image", "size": [8, 8]}],
            "output": {"name": "label", "type": "category"},
        },
        "model": {"type": "cnn", "channels": [4]},
        "train": {"epochs": epochs, "batch_size": 8, "lr": 0.01},
    }


def make_fusion(root: Path, rows: int = 160, seed: int = 0) -> Path:
    """``root/fusion.csv``: two texts, a number, a category, an image path (PNGs under ``root/pics``), a list
    of numbers and a list of tokens (JSON) per row, whose label needs the number and the first text together."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "pics").mkdir(parents=True, exist_ok=True)
    x1 = rng.normal(size=rows)
    tone = rng.choice(["good", "bad"], size=rows)
    words = {"good": ["tasty", "fresh", "lovely"], "bad": ["stale", "bland", "broken"]}
    score = x1 + np.where(tone == "good", 1.0, -1.0)
    frame = pd.DataFrame(
        {
            "title": [" ".join(rng.choice(words[t], size=3)) for t in tone],
            "note": rng.choice(["red box", "blue bag", "small tin"], size=rows),
            "x1": x1.round(4),
            "city": rng.choice(["paris", "oslo"], size=rows),
            "photo": [str(root / "pics" / f"{i}.png") for i in range(rows)],
            "recent": [json.dumps(rng.normal(size=rng.integers(0, 7)).round(2).tolist()) for _ in range(rows)],
            "clicks": [
                json.dumps(rng.choice(["home", "cart", "pay"], size=rng.integers(1, 5)).tolist()) for _ in range(rows)
            ],
            "label": np.where(score > 0, "buy", "skip"),
        }
    )
    for i in range(rows):
        pixels = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "pics" / f"{i}.png")
    frame.to_csv(root / "fusion.csv", index=False)
    return root / "fusion.csv"


def fusion_recipe(source: str, **model: object) -> dict[str, object]:
    """A small fusion model over ``make_fusion``'s columns."""
    return {
        "name": "fusion",
        "seed": 0,
        "data": {"source": source, "split": {"train": 0.7, "validation": 0.15, "test": 0.15}},
        "features": {
            "inputs": [
                {"name": "title", "type": "text", "max_length": 8, "vocab_size": 100},
                {"name": "note", "type": "text", "max_length": 8, "vocab_size": 100},
                {"name": "x1", "type": "numeric"},
                {"name": "city", "type": "category"},
                {"name": "photo", "type": "image", "size": [8, 8]},
                {"name": "recent", "type": "sequence", "max_length": 4},
                {"name": "clicks", "type": "sequence", "values": "tokens"},
            ],
            "output": {"name": "label", "type": "binary"},
        },
        "model": {
            "type": "fusion",
            "encoders": {
                "image": {"type": "cnn", "channels": [4]},
                "tabular": {"hidden": [16]},
                "text": {"type": "bag", "dim": 16},
                "sequence": {"type": "gru", "hidden": 8},
                "clicks": {"type": "conv1d", "hidden": 8},
            },
            **model,
        },
        "train": {"epochs": 8, "batch_size": 16, "lr": 0.01},
    }


@pytest.fixture(scope="session")
def fusion_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained fusion package (cross-attention over two texts, tabular columns and an image)."""
    root = tmp_path_factory.mktemp("fusion")
    source = make_fusion(root)
    recipe = fusion_recipe(str(source), combiner={"type": "cross_attention", "layers": 1, "heads": 2, "dim": 16})
    return seekforge.run(recipe, runs_dir=root / "runs").package


@pytest.fixture
def tabular_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    make_tabular().to_csv(path, index=False)
    return path


@pytest.fixture
def recipe_file(tmp_path: Path, tabular_csv: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tabular_recipe(tabular_csv.name), sort_keys=False))
    return path


@pytest.fixture(scope="session")
def served_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tabular package with its raw-input ONNX export."""
    from seekforge.export import export_package

    root = tmp_path_factory.mktemp("served")
    make_tabular().to_csv(root / "d.csv", index=False)
    package = seekforge.run(tabular_recipe(str(root / "d.csv")), runs_dir=root / "runs").package
    export_package(package)
    return package


@pytest.fixture(scope="session")
def tiny_text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny scratch text classifier (one epoch on 120 rows of a six-word language): for mechanics."""
    root = tmp_path_factory.mktemp("text-package")
    rng = np.random.default_rng(0)
    words = {"great": ["tasty", "fresh", "lovely"], "other": ["stale", "bland", "broken"]}
    rows = [(label, " ".join(rng.choice(words[label], size=4))) for label in rng.choice(list(words), size=120)]
    frame = pd.DataFrame({"review": [t for _, t in rows], "score": [s for s, _ in rows]})
    frame.to_json(root / "t.jsonl", orient="records", lines=True)
    return seekforge.run(text_recipe(str(root / "t.jsonl"), epochs=1), runs_dir=root / "runs").package


def exit_texts(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Reviews whose class shows in two telling words (easy rows) or in one, perhaps after "not" (harder)."""
    rng = np.random.default_rng(seed)
    good, bad, plain = ["tasty", "fresh", "lovely"], ["stale", "bland", "broken"], ["the", "a", "box", "tea", "it"]
    out = []
    for label in rng.choice(["great", "other"], size=rows):
        telling = good if label == "great" else bad
        if rng.random() < 0.6:
            words = [*rng.choice(telling, size=2), *rng.choice(plain, size=4)]
        elif rng.random() < 0.5:
            words = ["not", rng.choice(bad if label == "great" else good), *rng.choice(plain, size=6)]
        else:
            words = [rng.choice(telling), *rng.choice(plain, size=6)]
        out.append({"review": " ".join(words), "score": label})
    return pd.DataFrame(out)


def exit_recipe(source: str, **early_exit: object) -> dict[str, object]:
    """A 3-layer scratch text classifier with an exit head after each layer (its budget taken as measured on
    the few validation rows: ``confidence: 0.5``)."""
    recipe = text_recipe(source, epochs=4)
    recipe["model"] = {
        **recipe["model"],
        "layers": 3,
        "early_exit": {"budget": {"max_accuracy_drop": 0.02, "confidence": 0.5}, **early_exit},
    }  # type: ignore[dict-item]
    return recipe


@pytest.fixture(scope="session")
def exit_text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny text classifier with early exit (entropy policy, calibrated), for mechanics."""
    root = tmp_path_factory.mktemp("exit-package")
    exit_texts().to_json(root / "t.jsonl", orient="records", lines=True)
    return seekforge.run(exit_recipe(str(root / "t.jsonl")), runs_dir=root / "runs").package


#: Questions and answers a tiny language model learns (tests of causal-LM fine-tuning).
PAIRS = [("what colour is the sky", "blue"), ("what colour is grass", "green"), ("what colour is snow", "white"),
         ("what colour is coal", "black"), ("what colour is blood", "red"), ("what colour is the sun", "yellow")]  # fmt: skip


@contextmanager
def stop_requested_at_once() -> Iterator[None]:
    """Training finds a stop requested (as by Ctrl-C) from its start: it stops after its first optimizer step."""
    from seekforge.train import StopSignals

    original = StopSignals.__enter__

    def requested(self: StopSignals) -> StopSignals:
        entered = original(self)
        self.requested = True
        return entered

    StopSignals.__enter__ = requested  # type: ignore[method-assign]
    try:
        yield
    finally:
        StopSignals.__enter__ = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random weights and a word-level tokenizer over the pairs' words, saved locally."""
    transformers = pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder = tmp_path_factory.mktemp("tiny-llm")
    words = sorted({w for pair in PAIRS for text in pair for w in text.split()})
    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>", unk_token="<unk>")  # fmt: skip
    fast.save_pretrained(folder)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                      initializer_range=0.5)  # fmt: skip  # weights that reach the logits
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def other_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``served_package``'s model trained again from another seed: the same inputs, other weights (and no
    ONNX export, so it is served on torch)."""
    root = tmp_path_factory.mktemp("other")
    make_tabular().to_csv(root / "d.csv", index=False)
    return seekforge.run({**tabular_recipe(str(root / "d.csv")), "seed": 1}, runs_dir=root / "runs").package


def export_on_this_cpu(package: Path, config: ExportConfig) -> ExportResult | None:
    """Export ``package`` and return the result, where the hardware decides what the product must do:

    - bf16 on a CPU without bf16 is refused before any work (the gate could not judge bf16 numbers);
    - int8 on a CPU without VNNI may be refused by its parity gate, with its numbers.

    For a refusal, check that nothing was written and return None. With VNNI and bf16, every variant
    must pass."""
    from seekforge.core.hardware import hardware
    from seekforge.core.package import read_manifest
    from seekforge.export import ExportError, export_package

    before = read_manifest(package)
    if config.precision == "bf16" and not hardware().bf16:
        with pytest.raises(ExportError, match=r"bfloat16 only on a CPU with AVX-512 BF16 or AMX; this one \("):
            export_package(package, config)
        assert read_manifest(package) == before and not (package / config.variant.file).exists()
        return None
    if config.precision != "int8" or hardware().vnni:
        return export_package(package, config)
    try:
        return export_package(package, config)
    except ExportError as exc:
        assert f"the {config.variant.name} model failed the parity gate on" in exc.message, exc.message
        assert re.search(r"\d\.\d+ [<>] \d", exc.message), exc.message
        assert read_manifest(package) == before and not (package / config.variant.file).exists()
        return None
