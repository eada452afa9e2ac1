from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from seekforge.core.errors import CheckpointError, ConfigError, TrainingInterrupted
from seekforge.core.hardware import hardware
from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig
from seekforge.models import MLPConfig
from seekforge.train import Tensors, TrainConfig, Trainer, untimed
from tests.conftest import make_tabular, tabular_recipe

FEATURES = FeaturesConfig.model_validate(tabular_recipe("x")["features"])


def data(rows: int, seed: int, pre: Preprocessor | None = None) -> tuple[Tensors, Preprocessor]:
    frame = make_tabular(rows, seed=seed)
    pre = pre or Preprocessor(FEATURES).fit(frame)
    return Tensors(pre.transform(frame), pre.transform_target(frame)), pre


def make_trainer(
    tmp_path: Path, pre: Preprocessor, hook: Callable[[dict[str, Any]], None] | None = None, checks: int = 1,
    **train: object,
) -> Trainer:  # fmt: skip
    torch.manual_seed(0)
    model = MLPConfig(hidden=[16], dropout=0.2).build(pre.model_io())
    config = TrainConfig.model_validate({"epochs": 4, "batch_size": 16, "lr": 0.01, **train})
    return Trainer(
        model, config, task="classification", seed=0, run_dir=tmp_path, epoch_hook=hook, checks_per_epoch=checks
    )


def stop_at_micro_batch(trainer: Trainer, n: int) -> None:
    """Request a stop (what Ctrl-C or SIGTERM do) as ``trainer`` starts its ``n``-th micro-batch."""
    original, calls = trainer._forward_backward, {"n": 0}

    def signalled(*args: object, **kwargs: object) -> float:
        calls["n"] += 1
        if calls["n"] == n:
            trainer.stop_signals.request()
        return original(*args, **kwargs)

    trainer._forward_backward = signalled  # type: ignore[method-assign]


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_loss_goes_down_and_metrics_are_logged(tmp_path: Path) -> None:
    train, pre = data(200, 0)
    val, _ = data(60, 1, pre)
    result = make_trainer(tmp_path, pre, epochs=6).fit(train, val)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.6 * losses[0]
    assert result.history[-1]["val_accuracy"] > 0.8
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert result.steps == 6 * 13
    if sys.platform != "win32":  # the process's peak resident memory, never shrinking
        peaks = [json.loads(line)["peak_rss_mb"] for line in lines]
        assert peaks == sorted(peaks) and peaks[0] > 50


def test_same_seed_same_weights(tmp_path: Path) -> None:
    train, pre = data(120, 0)
    a = make_trainer(tmp_path / "a", pre)
    a.fit(train, None)
    b = make_trainer(tmp_path / "b", pre)
    b.fit(train, None)
    for key, value in weights(a).items():
        assert torch.equal(value, weights(b)[key]), key


def test_checks_within_an_epoch_reach_the_hook_and_leave_training_alone(tmp_path: Path) -> None:
    train, pre = data(120, 0)  # 8 steps an epoch
    val, _ = data(40, 1, pre)
    seen: list[dict[str, Any]] = []
    checked = make_trainer(tmp_path / "checked", pre, hook=seen.append, checks=3, epochs=2)
    result = checked.fit(train, val)
    # thirds of 8 steps fall after steps 3 and 6: 3/8 and 6/8 of an epoch trained, checks 1 and 2 of 3
    got = [(r["epoch"], r["step"], r.get("check")) for r in seen]
    assert got == [(0.375, 3, 1), (0.75, 6, 2), (1, 8, None), (1.375, 11, 4), (1.75, 14, 5), (2, 16, None)]
    assert all("val_accuracy" in r and "val_loss" in r for r in seen)
    assert [h["epoch"] for h in result.history] == [1, 2]  # the checks are not epochs of the history
    lines = (tmp_path / "checked" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    plain = make_trainer(tmp_path / "plain", pre, epochs=2)
    plain.fit(train, val)
    for key, value in weights(plain).items():  # evaluating in between changes neither weights nor dropout
        assert torch.equal(value, weights(checked)[key]), key


def test_a_stop_at_a_check_comes_after_it(tmp_path: Path) -> None:
    train, pre = data(120, 0)  # 8 steps an epoch; a check after step 4
    val, _ = data(40, 1, pre)
    seen: list[dict[str, Any]] = []
    trainer = make_trainer(tmp_path, pre, hook=seen.append, checks=2, epochs=2)
    stop_at_micro_batch(trainer, 4)
    with pytest.raises(TrainingInterrupted):
        trainer.fit(train, val)
    resumed = make_trainer(tmp_path, pre, hook=seen.append, checks=2, epochs=2)
    resumed.fit(train, val, resume=True)
    assert [r["epoch"] for r in seen] == [0.5, 1, 1.5, 2]  # the check at the stop was made once


@pytest.mark.parametrize("stop_at", [5, 8, 17])  # mid-accumulation, at a step boundary, in a later epoch
def test_stop_request_then_resume_equals_uninterrupted(tmp_path: Path, stop_at: int) -> None:
    train, pre = data(120, 0)
    val, _ = data(40, 1, pre)
    straight = make_trainer(tmp_path / "straight", pre, grad_accum=2, checkpoint_every=3)
    expected = straight.fit(train, val)

    interrupted = make_trainer(tmp_path / "resumed", pre, grad_accum=2, checkpoint_every=3)
    stop_at_micro_batch(interrupted, stop_at)
    with pytest.raises(TrainingInterrupted, match="checkpoint written"):
        interrupted.fit(train, val)
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == (stop_at + 1) // 2  # it stopped at the first step boundary after the request

    resumed = make_trainer(tmp_path / "resumed", pre, grad_accum=2, checkpoint_every=3)
    got = resumed.fit(train, val, resume=True)
    assert got.resumed_from is not None
    for key, value in weights(straight).items():
        assert torch.equal(value, weights(resumed)[key]), key
    assert untimed(got.history) == untimed(expected.history)
    # each epoch's weight histograms and gradient norms, once each, as the uninterrupted run wrote them
    assert (tmp_path / "resumed" / "weights.jsonl").read_text() == (tmp_path / "straight" / "weights.jsonl").read_text()


@pytest.mark.parametrize("clip", [1.0, None])
def test_each_layers_weights_and_gradients_are_summarised_by_epoch(tmp_path: Path, clip: float | None) -> None:
    train, pre = data(120, 0)  # 8 steps an epoch: steps 0 and 8, 16, 24 are measured
    trainer = make_trainer(tmp_path, pre, epochs=5, histograms_every=2, grad_clip=clip)
    trainer.fit(train, None)
    records = [json.loads(line) for line in (tmp_path / "weights.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [2, 4, 5]  # every second epoch, and the last
    last = records[-1]["layers"]
    params = dict(trainer.model.named_parameters())
    assert list(last) == list(params)
    for name, p in params.items():
        entry, values = last[name], p.detach().flatten()
        assert entry["shape"] == list(p.shape) and sum(entry["counts"]) == values.numel() and len(entry["counts"]) == 32
        assert (entry["min"], entry["max"]) == (float(values.min()), float(values.max()))
        assert entry["mean"] == pytest.approx(float(values.mean()), abs=1e-6)
        assert entry["counts"] == [int(c) for c in torch.histc(values, bins=32, min=entry["min"], max=entry["max"])]
        assert entry["grad_norm"] > 0
    off = make_trainer(tmp_path / "off", pre, epochs=1, histograms_every=0)
    off.fit(train, None)
    assert not (tmp_path / "off" / "weights.jsonl").exists()


def test_hard_interrupt_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    train, pre = data(120, 0)
    trainer = make_trainer(tmp_path, pre, checkpoint_every=2)
    calls = {"n": 0}
    original = trainer._forward_backward

    def hard(*args: object, **kwargs: object) -> float:
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # a second Ctrl-C arrives mid-step
        return original(*args, **kwargs)

    trainer._forward_backward = hard  # type: ignore[method-assign]
    with pytest.raises(TrainingInterrupted, match=r"last checkpoint .* is kept"):
        trainer.fit(train, None)
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["step"] == 4


def test_early_stopping_keeps_best_weights(tmp_path: Path) -> None:
    train, pre = data(60, 0)
    val, _ = data(60, 5, pre)
    trainer = make_trainer(tmp_path, pre, epochs=40, lr=0.05, early_stopping={"patience": 2})
    result = trainer.fit(train, val)
    assert result.stopped_early and len(result.history) < 40
    best = min(result.history, key=lambda h: h["val_loss"])
    assert result.best_epoch == best["epoch"]
    assert trainer.evaluate(val)["loss"] == pytest.approx(best["val_loss"], rel=1e-6)


def test_early_stopping_needs_validation(tmp_path: Path) -> None:
    train, pre = data(40, 0)
    with pytest.raises(ConfigError, match="needs a validation split"):
        make_trainer(tmp_path, pre, early_stopping={"patience": 2}).fit(train, None)


def test_unknown_monitor_lists_metrics(tmp_path: Path) -> None:
    train, pre = data(40, 0)
    with pytest.raises(ConfigError, match="available: val_loss"):
        make_trainer(tmp_path, pre, early_stopping={"monitor": "val_acc"}).fit(train, train)


@pytest.mark.parametrize("optimizer", ["sgd", "adafactor", "lamb"])
def test_every_optimizer_learns(tmp_path: Path, optimizer: str) -> None:
    train, pre = data(160, 0)
    result = make_trainer(tmp_path, pre, epochs=5, optimizer=optimizer, lr=0.05).fit(train, None)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_bf16_autocast_trains_where_the_cpu_has_bf16_and_falls_back_where_not(tmp_path: Path) -> None:
    """On this CPU as it is: bf16 with AVX-512 BF16 or AMX, else fp32 with the fallback warning (the
    other branch of each kind of CPU is forced in the next test)."""
    train, pre = data(80, 0)
    if hardware().bf16:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            trainer = make_trainer(tmp_path, pre, precision="bf16", epochs=3, class_weights="balanced")
        assert trainer.precision == "bf16"
    else:
        with pytest.warns(RuntimeWarning, match=r"has no bf16 support \(.*no AVX-512 BF16 or AMX\); training in fp32"):
            trainer = make_trainer(tmp_path, pre, precision="bf16", epochs=3, class_weights="balanced")
        assert trainer.precision == "fp32"
    result = trainer.fit(train, None)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("flags", [{"avx2"}, {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"}])
def test_bf16_follows_the_cpu_facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: set[str]) -> None:
    facts = dataclasses.replace(hardware(), flags=frozenset(flags), isa_cap=None)
    monkeypatch.setattr("seekforge.train._trainer.hardware", lambda: facts)
    _, pre = data(20, 0)
    if facts.bf16:
        assert make_trainer(tmp_path, pre, precision="bf16").precision == "bf16"
    else:
        with pytest.warns(RuntimeWarning, match=r"\(AVX2: no AVX-512 BF16 or AMX\); training in fp32"):
            assert make_trainer(tmp_path, pre, precision="bf16").precision == "fp32"


def test_batch_must_split_over_accumulation() -> None:
    with pytest.raises(ValueError, match="divisible by grad_accum"):
        TrainConfig(batch_size=10, grad_accum=3)


def test_resume_with_another_seed_is_refused(tmp_path: Path) -> None:
    train, pre = data(40, 0)
    make_trainer(tmp_path, pre, epochs=1).fit(train, None)
    other = make_trainer(tmp_path, pre, epochs=2)
    other.seed = 7
    with pytest.raises(ConfigError, match="written with seed 0"):
        other.fit(train, None, resume=True)


def test_a_one_row_last_batch_joins_the_previous_one(tmp_path: Path) -> None:
    train, pre = data(33, 0)  # 33 rows in batches of 16: 16, 17 rather than 16, 16, 1
    torch.manual_seed(0)
    model = MLPConfig(hidden=[8], norm="batch").build(pre.model_io())
    trainer = Trainer(model, TrainConfig(epochs=2, batch_size=16), task="classification", seed=0, run_dir=tmp_path)
    assert trainer.fit(train, None).steps == 4


def test_stop_during_the_last_epoch_end_finishes_the_run(tmp_path: Path) -> None:
    train, pre = data(40, 0)
    val, _ = data(20, 1, pre)
    trainer = make_trainer(tmp_path, pre, epochs=2)
    original = trainer.evaluate

    def evaluate_then_signal(*args: object, **kwargs: object) -> dict[str, float]:
        if len(trainer_calls) == 1:
            trainer.stop_signals.request()  # Ctrl-C while the last validation runs
        trainer_calls.append(1)
        return original(*args, **kwargs)

    trainer_calls: list[int] = []
    trainer.evaluate = evaluate_then_signal  # type: ignore[method-assign]
    assert len(trainer.fit(train, val).history) == 2  # finished: nothing left to resume


def test_stop_at_an_epoch_end_writes_the_checkpoint_it_reports(tmp_path: Path) -> None:
    train, pre = data(40, 0)
    val, _ = data(20, 1, pre)
    trainer = make_trainer(tmp_path, pre, epochs=3)
    original = trainer.evaluate

    def evaluate_then_signal(*args: object, **kwargs: object) -> dict[str, float]:
        trainer.stop_signals.request()
        return original(*args, **kwargs)

    trainer.evaluate = evaluate_then_signal  # type: ignore[method-assign]
    with pytest.raises(TrainingInterrupted, match="checkpoint written"):
        trainer.fit(train, val)
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1


def test_damaged_or_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    train, pre = data(40, 0)
    make_trainer(tmp_path, pre, epochs=1).fit(train, None)
    path = tmp_path / "checkpoints" / "last.pt"
    payload = torch.load(path, weights_only=True)
    payload["world_size"] = 2
    torch.save(payload, path)
    with pytest.raises(ConfigError, match="written by 2 processes"):
        make_trainer(tmp_path, pre, epochs=2).fit(train, None, resume=True)
    payload["world_size"] = 1
    first = next(iter(payload["model"]))
    payload["model"][first] = torch.zeros(1)  # another model's weight
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"does not fit this model: .*{first}"):
        make_trainer(tmp_path, pre, epochs=2).fit(train, None, resume=True)
    path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="cannot be read"):
        make_trainer(tmp_path, pre, epochs=2).fit(train, None, resume=True)


def test_lower_is_better() -> None:
    from seekforge.core.metrics import lower_is_better

    assert lower_is_better("train_loss") and lower_is_better("val_rmse") and not lower_is_better("val_r2")


def test_class_weights_by_name_weight_the_loss(tmp_path: Path) -> None:
    train, pre = data(80, 0)
    model = MLPConfig(hidden=[8]).build(pre.model_io())

    def loss_weights(spec: object) -> torch.Tensor | None:
        config = TrainConfig.model_validate({"class_weights": spec})
        trainer = Trainer(model, config, task="classification", seed=0, run_dir=tmp_path, classes=pre.classes_)
        return trainer._class_weights(train.target)

    assert pre.classes_ == ["buy", "skip"]
    assert loss_weights({"skip": 3}).tolist() == [1.0, 3.0]  # classes left out weigh 1
    balanced = loss_weights("balanced")
    counts = torch.bincount(train.target).float()
    assert torch.allclose(balanced * counts, torch.full_like(counts, len(train.target) / 2))
    assert loss_weights("none") is None
    with pytest.raises(ConfigError, match="no class named 'maybe'"):
        loss_weights({"maybe": 2.0})
    with pytest.raises(ValueError, match="greater than 0"):
        TrainConfig.model_validate({"class_weights": {"skip": 0}})
    assert TrainConfig.model_validate({"class_weights": {3: 1.5, 2.0: 1}}).class_weights == {"3": 1.5, "2": 1.0}


def test_warmup_counts_steps_when_given_in_steps() -> None:
    from seekforge.train import TrainConfig, lr_lambda

    config = TrainConfig(schedule={"type": "constant", "warmup_steps": 4})
    factor = lr_lambda(config, total_steps=100)
    assert [factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_lambda(TrainConfig(schedule={"type": "constant", "warmup_steps": 400}), total_steps=10)(9) == 1.0


def test_progressive_data_grows_each_epochs_rows_and_resumes_to_the_same_weights(tmp_path: Path) -> None:
    train, pre = data(160, 0)
    val, _ = data(40, 1, pre)
    progressive = {"progressive": {"start": 0.25, "grow": 0.25}, "schedule": {"type": "linear", "warmup": 0.0}}
    straight = make_trainer(tmp_path / "straight", pre, **progressive)
    expected = straight.fit(train, val)
    assert [h["train_rows"] for h in expected.history] == [40, 80, 120, 160]
    assert expected.steps == 3 + 5 + 8 + 10  # batches of 16; the schedule spans these steps
    assert expected.history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    interrupted = make_trainer(tmp_path / "resumed", pre, **progressive)
    stop_at_micro_batch(interrupted, 6)  # in the second epoch
    with pytest.raises(TrainingInterrupted, match="checkpoint written"):
        interrupted.fit(train, val)
    resumed = make_trainer(tmp_path / "resumed", pre, **progressive)
    assert untimed(resumed.fit(train, val, resume=True).history) == untimed(expected.history)
    for key, value in weights(straight).items():
        assert torch.equal(value, weights(resumed)[key]), key
