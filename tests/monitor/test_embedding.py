from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from seekforge.models import ModelIO, TransformerConfig
from seekforge.monitor import DriftReport, MonitorConfig, drift_report
from seekforge.monitor._embedding import AXES, classifier_auc, embedding_sketch, mmd_test, project

DIM = 48


def vectors(rows: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Embeddings with a few strong directions, as a model's are; ``shift`` moves the mean along one."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.1, DIM)
    out = rng.normal(size=(rows, DIM)) * scales
    out[:, 5] += shift
    return out


class Encoder(torch.nn.Module):
    """Stands in for a text model: ``embed_text`` returns the stored vector of each row."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)
        self.linear = torch.nn.Linear(1, 1)  # a parameter, so it is a model

    def embed_text(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.table[batch["row"]]


def sketch_of(table: np.ndarray, seed: int = 0) -> dict[str, Any]:
    return embedding_sketch(Encoder(table), {"row": torch.arange(len(table))}, seed)


@pytest.fixture(scope="module")
def sketch() -> dict[str, Any]:
    return sketch_of(vectors(3000, seed=0))


def reference_with(sketch: dict[str, Any]) -> dict[str, Any]:
    words = {"count": 1000, "missing": 0, "mean": 5.0, "std": 1.0}
    text = {"type": "text", "tokens": words, "words": words, "empty": 0, "embedding": sketch}
    return {"version": 2, "rows": 3000, "features": {"review": text}, "output": {"name": "y", "frequencies": {}}}


def live_texts(rows: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Live texts, and the embedding the stand-in model gives each."""
    table = vectors(rows, seed, shift)
    texts = [f"t{seed}-{i}" for i in range(rows)]
    return pd.DataFrame({"review": texts}), dict(zip(texts, table, strict=True))


def embedder(lookup: dict[str, np.ndarray]) -> Any:
    def embed(name: str, texts: pd.Series) -> np.ndarray:
        assert name == "review"
        return np.stack([lookup[t] for t in texts])

    return embed


def test_sketch_keeps_the_leading_axes_of_a_seeded_sample(sketch: dict[str, Any]) -> None:
    assert sketch["rows"] == 1000 and sketch["dim"] == DIM
    axes = np.asarray(sketch["axes"])
    assert axes.shape == (AXES, DIM)
    np.testing.assert_allclose(axes @ axes.T, np.eye(AXES), atol=1e-4)
    assert 0.9 < sketch["explained"] <= 1.0  # the variance sits in the leading directions
    assert np.asarray(sketch["sample"]).shape == (1000, AXES)
    assert sketch == sketch_of(vectors(3000, seed=0))  # same seed, same sketch
    assert sketch["sample"] != sketch_of(vectors(3000, seed=0), seed=1)["sample"]
    json.dumps(sketch)


def test_projection_refuses_another_width(sketch: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="width 7"):
        project(sketch, np.zeros((3, 7)))


def test_classifier_and_mmd_tell_a_shift_from_noise(sketch: dict[str, Any]) -> None:
    reference = np.asarray(sketch["sample"])
    same = project(sketch, vectors(1000, seed=9))
    moved = project(sketch, vectors(1000, seed=9, shift=1.5))
    assert classifier_auc(reference, same, seed=0) < 0.55 < classifier_auc(reference, moved, seed=0)
    assert mmd_test(reference, same, seed=0)[1] > 0.05 > mmd_test(reference, moved, seed=0)[1]
    assert classifier_auc(reference, moved, seed=3) == classifier_auc(reference, moved, seed=3)


@pytest.mark.parametrize("test", ["classifier", "mmd"])
def test_report_flags_a_text_feature_whose_embeddings_moved(sketch: dict[str, Any], test: str) -> None:
    reference = reference_with(sketch)
    config = MonitorConfig(embedding_test=test, min_rows=200)
    steady, steady_lookup = live_texts(1500, seed=4)
    report = drift_report(reference, steady, config, embed=embedder(steady_lookup))
    found = report.features[0].embedding
    assert found is not None and found.test == test and not found.drifted
    assert found.rows == 1000  # a sample of the window's 1,500 texts
    assert not report.features[0].drifted

    moved, moved_lookup = live_texts(600, seed=5, shift=0.8)
    report = drift_report(reference, moved, config, embed=embedder(moved_lookup))
    feature = report.features[0]
    assert feature.embedding is not None and feature.embedding.drifted and feature.embedding.rows == 600
    assert feature.drifted and report.drift
    assert "embeddings" in report.to_html()
    assert DriftReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_embeddings_need_enough_rows_and_a_model(sketch: dict[str, Any]) -> None:
    reference = reference_with(sketch)
    moved, lookup = live_texts(300, seed=5, shift=2.0)
    few = drift_report(reference, moved, MonitorConfig(min_rows=500), embed=embedder(lookup)).features[0].embedding
    assert few is not None and few.statistic is not None and few.statistic > 0.55 and not few.drifted
    unembedded = drift_report(reference, moved, MonitorConfig(min_rows=100)).features[0].embedding
    assert unembedded is not None and unembedded.statistic is None and "no model" in unembedded.note
    skipped = drift_report(reference, moved, MonitorConfig(embedding_test="none"), embed=embedder(lookup))
    assert skipped.features[0].embedding is None


def test_embedding_thresholds_are_validated() -> None:
    with pytest.raises(ValidationError, match="classifier_auc"):
        MonitorConfig(classifier_auc=0.4)
    with pytest.raises(ValidationError, match="embedding_rows"):
        MonitorConfig(embedding_rows=10_000)


def test_text_transformer_embeds_what_its_head_reads() -> None:
    config = TransformerConfig(type="transformer", layers=1, heads=2, hidden=16, ffn=32)
    io = ModelIO(output_dim=3, vocab_size=30, max_length=8)
    model = config.build(io).eval()
    batch = {"input_ids": torch.randint(1, 30, (4, 8)), "attention_mask": torch.ones(4, 8, dtype=torch.long)}
    with torch.no_grad():
        pooled = model.embed_text(batch)
        assert pooled.shape == (4, 16)
        torch.testing.assert_close(model.head(pooled), model(batch))


def test_a_small_window_raises_the_classifier_threshold_above_its_noise(sketch: dict[str, Any]) -> None:
    reference = reference_with(sketch)
    alarms, thresholds = 0, set()
    for seed in range(10, 30):  # 100 live texts like the training ones
        steady, lookup = live_texts(100, seed=seed)
        found = drift_report(reference, steady, MonitorConfig(), embed=embedder(lookup)).features[0].embedding
        assert found is not None
        alarms += found.drifted
        thresholds.add(round(found.threshold, 3))
    assert thresholds == {0.591} and alarms <= 1  # 0.5 + 3 x sqrt((100 + 1000 + 1) / (12 x 100 x 1000))
    moved, lookup = live_texts(100, seed=5, shift=2.0)
    assert drift_report(reference, moved, MonitorConfig(), embed=embedder(lookup)).features[0].embedding.drifted
