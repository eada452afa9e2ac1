"""Early exit: rows leave at their exit with that exit's numbers, batched or one by one; a pretrained
encoder run layer by layer is the encoder; calibration meets the budget or falls back; the exits' training
losses; recipes that cannot have early exit are refused."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from seekforge.core.errors import ConfigError
from seekforge.models import EarlyExitConfig, ExitPolicy, ModelIO, TransformerConfig, calibrate_model
from seekforge.models._exits import calibrate, normalised_entropy


def _batch(rows: int = 12, tokens: int = 10) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 50, (rows, tokens), generator=generator)
    lengths = torch.randint(2, tokens + 1, (rows,), generator=generator)
    mask = (torch.arange(tokens)[None] < lengths[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def _model(policy: str = "entropy", **kwargs: object) -> torch.nn.Module:
    config = TransformerConfig(layers=4, heads=2, hidden=16, ffn=32, early_exit={"policy": policy}, **kwargs)
    torch.manual_seed(0)
    return config.build(config.prepare_io(ModelIO(output_dim=3, vocab_size=50, max_length=10))).eval()


@pytest.mark.parametrize("policy", ["entropy", "patience", "length"])
def test_rows_leave_at_the_exit_the_policy_names_with_that_exits_logits(policy: str) -> None:
    model, batch = _model(policy), _batch()
    with torch.no_grad():
        every = model.all_exits(batch)
        threshold = {"entropy": float(normalised_entropy(every[0]).median()), "patience": 1.0, "length": 16.0}
        model.set_threshold(threshold[policy])
        logits, layers = model.routed(batch)
        alone = [model.routed({k: v[i : i + 1] for k, v in batch.items()}) for i in range(len(layers))]
    expected = model.policy.route(every, batch["attention_mask"])
    assert layers.tolist() == [model.exit_layers[k] for k in expected.tolist()]
    assert len(set(layers.tolist())) > 1, "the threshold should send rows to different exits"
    for row, k in enumerate(expected.tolist()):
        assert torch.allclose(logits[row], every[k][row], atol=1e-5)
        assert alone[row][1].item() == layers[row].item()  # a row's exit does not depend on its batch
        assert torch.allclose(alone[row][0][0], logits[row], atol=1e-5)
    for k in range(len(model.exit_layers)):
        assert torch.allclose(model.forward_to(batch, k), every[k], atol=1e-6)


def test_without_a_threshold_every_row_runs_the_plain_model() -> None:
    plain_config = TransformerConfig(layers=4, heads=2, hidden=16, ffn=32)
    torch.manual_seed(0)
    plain = plain_config.build(plain_config.prepare_io(ModelIO(output_dim=3, vocab_size=50, max_length=10))).eval()
    model, batch = _model(), _batch()
    model.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        logits, layers = model.routed(batch)
        assert torch.equal(logits, plain(batch)) and torch.equal(model(batch), logits)
    assert set(layers.tolist()) == {4}


def test_a_pretrained_encoder_run_layer_by_layer_is_the_encoder() -> None:
    io = ModelIO(output_dim=2, vocab_size=30522, max_length=10)
    plain, exits = (
        TransformerConfig(pretrained="builtin:minilm"),
        TransformerConfig(pretrained="builtin:minilm", early_exit={"heads": [2, 4]}),
    )
    torch.manual_seed(0)
    reference = plain.build(plain.prepare_io(io)).eval()
    model = exits.build(exits.prepare_io(io)).eval()
    model.load_state_dict(reference.state_dict(), strict=False)
    batch = _batch(6)
    batch["input_ids"] = batch["input_ids"] + 1000 * batch["attention_mask"]
    with torch.no_grad():
        every = model.all_exits(batch)
        assert model.exit_layers == [2, 4, 6] and len(model.exit_heads) == 2
        assert torch.allclose(every[-1], reference(batch), atol=1e-5)
        model.set_threshold(float(normalised_entropy(every[0]).median()))
        logits, layers = model.routed(batch)
    chosen = model.policy.route(every, batch["attention_mask"])
    assert layers.tolist() == [model.exit_layers[k] for k in chosen.tolist()]
    assert torch.allclose(logits, torch.stack(every)[chosen, torch.arange(6)], atol=1e-5)


def test_calibration_saves_the_most_layers_within_the_budget() -> None:
    # Exit 1 is right on the 8 confident rows and wrong on the 2 unsure ones; exit 2 (the last) is always right.
    target = torch.tensor([0, 1] * 5)
    sure = torch.nn.functional.one_hot(target, 2).float() * 8
    first = sure.clone()
    first[8:] = torch.tensor([[0.1, 0.0], [0.0, 0.1]])[[1, 0]]  # unsure, and wrong
    mask = torch.ones(10, 4, dtype=torch.long)
    found = calibrate(EarlyExitConfig(budget={"max_accuracy_drop": 0.0}), [1, 2], [first, sure], target, mask)
    assert found["met"] and found["chosen"]["accuracy"] == 1.0 and found["chosen"]["exits"] == [8, 2]
    assert found["chosen"]["mean_layers"] == pytest.approx(1.2)
    assert 0.0 < found["threshold"] <= 1.0 and found["curve"][0]["exits"] == [0, 10]
    # 100 rows; exit 1 loses 3 of the last model's right answers and gains 2: a drop of 1 point exactly, which
    # meets a 1-point budget taken as measured, but not with 95% confidence (its margin is 1.6 x 2.2 points).
    target = torch.tensor([0, 1] * 50)
    last = torch.nn.functional.one_hot(target, 2).float() * 8
    last[:2] = last[:2].flip(1)  # the last model misses rows 0 and 1...
    first = last.clone()
    first[:2] = first[:2].flip(1)  # ...which exit 1 gets right,
    first[2:5] = first[2:5].flip(1)  # and exit 1 misses rows 2 to 4
    mask = torch.ones(100, 4, dtype=torch.long)
    for confidence, met in ((0.5, True), (0.95, False)):
        budget = {"max_accuracy_drop": 0.01, "confidence": confidence}
        found = calibrate(EarlyExitConfig(budget=budget), [1, 2], [first, last], target, mask)
        assert found["met"] is met, confidence
    assert found["curve"][-1]["lost"] == 3 and found["curve"][-1]["gained"] == 2
    assert found["curve"][-1]["drop_bound"] == pytest.approx(0.01 + 1.6449 * (5 - 1 / 100) ** 0.5 / 100, abs=1e-4)
    # With every early answer confidently wrong, only "never exit early" keeps the accuracy.
    mask = torch.ones(10, 4, dtype=torch.long)
    wrong = calibrate(
        EarlyExitConfig(budget={"max_accuracy_drop": 0.05}), [1, 2], [sure.flip(1), sure], target[:10], mask
    )
    assert not wrong["met"] and wrong["chosen"]["mean_layers"] == 2.0


def test_a_budget_no_threshold_meets_falls_back_to_all_layers_with_a_warning() -> None:
    model, batch = _model(), _batch()
    config = EarlyExitConfig(budget={"max_accuracy_drop": 0.0})
    with torch.no_grad():
        truth = model.all_exits(batch)[-1].argmax(1)
        for head in model.exit_heads:  # every exit head says the opposite class of the last, confidently
            head.out.weight.zero_()
            head.out.bias.copy_(torch.tensor([-50.0, 50.0, -50.0]))
    target = torch.where(truth == 1, 0, truth)  # class 1 is never right
    keep = target == truth
    inputs = {k: v[keep] for k, v in batch.items()}
    with pytest.warns(RuntimeWarning, match="runs all its layers"):
        record = calibrate_model(model, config, inputs, target[keep])
    assert record["threshold"] is None and record["met"] is False and model.policy.threshold is None
    fixed = calibrate_model(model, EarlyExitConfig(threshold=0.5), inputs, target[keep])
    assert fixed["threshold"] == 0.5 and fixed["calibrated"] is False and fixed["met"] is None


def test_joint_training_weights_the_exits_by_layer_and_the_distilling_loss_reaches_only_the_heads() -> None:
    model, batch = _model(), _batch()
    target = torch.arange(12) % 3
    model.train()
    final = model(batch)
    exits, _ = model._exit_outputs
    loss = torch.nn.functional.cross_entropy(final, target)
    joint = model.exit_loss(loss, lambda logits: torch.nn.functional.cross_entropy(logits, target))
    expected = sum(
        (n * torch.nn.functional.cross_entropy(e, target) for n, e in zip([1, 2, 3], exits, strict=True)), 4 * loss
    )
    assert torch.allclose(joint, expected / 10)
    model.zero_grad()
    model.exit_training = "distill"  # every parameter still requires gradients: the loss must not reach them
    model.train()
    assert model.exit_heads.training and not model.encoder.training and not model.dropout.training
    final = model(batch)
    model.exit_loss(torch.nn.functional.cross_entropy(final, target), None).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.exit_heads.parameters())
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("exit_heads."))


def test_exit_settings_that_cannot_work_are_refused() -> None:
    four_layers = TransformerConfig(layers=4, heads=2, hidden=16, ffn=32, early_exit={"heads": [2, 4]})
    with pytest.raises(ConfigError, match="exit heads go after layers 1 to 3"):
        four_layers.build(ModelIO(output_dim=2, vocab_size=50, max_length=10))
    for bad, words in [
        ({"heads": [1, 1]}, "names a layer twice"),
        ({"heads": []}, "at least one layer"),
        ({"threshold": 1.5}, "not a normalised entropy"),
        ({"policy": "patience", "threshold": 1.5}, "whole number"),
        ({"policy": "fastest"}, "policy"),
    ]:
        with pytest.raises(ValidationError, match=words):
            EarlyExitConfig.model_validate(bad)
    policy = ExitPolicy("length", 8.0, (1, 2, 4))
    # 8 tokens or more run all 4 layers; 3 tokens need ceil(4 * 3 / 8) = 2 layers; 1 token needs 1
    assert policy.planned_exit(torch.tensor([1, 3, 5, 8, 20])).tolist() == [0, 1, 2, 2, 2]
