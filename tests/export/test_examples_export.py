"""Every export variant of every example recipe passes its parity gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import seekforge
from seekforge.core.hardware import hardware
from seekforge.core.package import read_manifest
from seekforge.export import VARIANTS, ExportConfig, export_package
from tests.conftest import EXAMPLES, export_on_this_cpu

CONFIGS = [ExportConfig.for_variant(v) for v in VARIANTS.values()]
QUICK = ["digits", "breast_cancer", "wine", "diabetes"]


def _export_everything(name: str, runs: Path, epochs: int) -> None:
    package = seekforge.run(EXAMPLES / f"{name}.yaml", overrides=[f"train.epochs={epochs}"], runs_dir=runs).package
    failures, refused = [], set()
    for config in CONFIGS:
        if config.precision == "bf16" and not hardware().bf16:  # refused before any work, even with force
            assert export_on_this_cpu(package, config) is None
            refused.add(config.variant.name)
            continue
        result = export_package(package, config, force=True)
        if result.parity.passed:
            continue
        if config.precision == "int8" and not hardware().vnni:
            # Without VNNI the hardware decides: the export used 7-bit weights, the gate judged it and its
            # record says by how much (written only because of force=True).
            assert result.record["reduce_range"] and result.record["hardware"]["vnni"] is False
            assert result.record["parity"]["passed"] is False and result.parity.failures
            continue
        failures.append(f"{config.variant.name}: {'; '.join(result.parity.failures)}")
    assert not failures, failures
    assert set(read_manifest(package)["exports"]) == set(VARIANTS) - refused


def test_examples_are_all_covered() -> None:
    assert sorted([*QUICK, "reviews", "tweets", "digit_checks"]) == sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("name", QUICK)
def test_every_export_of_the_example_passes(name: str, tmp_path: Path) -> None:
    _export_everything(name, tmp_path, epochs=3)


@pytest.mark.slow
def test_every_export_of_the_minilm_reviews_example_passes(tmp_path: Path) -> None:
    _export_everything("reviews", tmp_path, epochs=1)


@pytest.mark.slow
def test_every_export_of_the_tweets_fusion_example_passes(tmp_path: Path) -> None:
    _export_everything("tweets", tmp_path, epochs=3)


@pytest.mark.slow
def test_every_export_of_the_image_and_tabular_fusion_example_passes(tmp_path: Path) -> None:
    _export_everything("digit_checks", tmp_path, epochs=3)
