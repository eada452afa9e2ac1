from __future__ import annotations

from pathlib import Path

import pytest

import seekforge
from seekforge.core.errors import DataError, NotFittedError, PackageError
from tests.conftest import make_tabular, tabular_recipe


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pkg")
    make_tabular().to_csv(root / "d.csv", index=False)
    return seekforge.run(tabular_recipe(str(root / "d.csv")), runs_dir=root / "runs").package


def test_predict_needs_declared_columns(package: Path) -> None:
    predictor = seekforge.load(package)
    with pytest.raises(DataError, match="records: declared column 'city' not found"):
        predictor.predict([{"x1": 1.0, "x2": 0.0, "member": "yes"}])
    with pytest.raises(DataError, match="nothing to predict"):
        predictor.predict([])


def test_classifier_probabilities(package: Path) -> None:
    predictor = seekforge.load(package)
    proba = predictor.predict_proba(make_tabular(3))
    assert proba.shape == (3, 2)
    assert predictor.classes == ["buy", "skip"] and predictor.task == "classification"


def test_tampered_weights_are_refused(package: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"model\.safetensors was modified"):
        seekforge.load(copy)


def test_unknown_backend(package: Path) -> None:
    with pytest.raises(PackageError, match="unknown backend 'tensorrt'"):
        seekforge.load(package, backend="tensorrt")


def test_unfitted_preprocessor_error_is_clear() -> None:
    from seekforge.data import Preprocessor
    from seekforge.data.config import FeaturesConfig

    with pytest.raises(NotFittedError):
        Preprocessor(FeaturesConfig.model_validate(tabular_recipe("x")["features"])).model_io()


def test_one_record_as_a_mapping(package: Path) -> None:
    record = make_tabular(1).drop(columns=["label"]).iloc[0].to_dict()
    assert len(seekforge.load(package).predict(record)) == 1


def test_large_inputs_are_preprocessed_ahead_in_chunks(package: Path) -> None:
    import threading

    import numpy as np

    predictor = seekforge.load(package, backend="torch")
    frame = make_tabular(500, seed=9)
    whole = predictor.predict_proba(frame)
    threads: list[str] = []
    encode = predictor.encode

    def recording(chunk: object) -> object:
        threads.append(threading.current_thread().name)
        return encode(chunk)  # type: ignore[arg-type]

    predictor.encode = recording  # type: ignore[method-assign]
    predictor.chunk_rows = 64
    chunked = predictor.predict_proba(frame)
    assert np.allclose(chunked, whole, atol=1e-6) and chunked.shape == (500, 2)
    assert len(threads) == 8 and all(name.startswith("seekforge-preprocess") for name in threads)
