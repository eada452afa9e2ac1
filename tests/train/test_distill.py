from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from seekforge.models import MLPConfig, ModelIO
from seekforge.train import Distillation, Tensors, TrainConfig, Trainer


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MLPConfig(hidden=[8]).build(ModelIO(output_dim=3, numeric_dim=4))


def test_alpha_zero_is_the_label_loss_and_a_matching_teacher_adds_nothing() -> None:
    student = _model(0)
    batch = {"numeric": torch.randn(6, 4)}
    logits = student.eval()(batch).detach()
    hard = F.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert torch.equal(Distillation(_model(1), alpha=0.0).loss(logits, batch, hard, "classification"), hard)
    same = Distillation(_model(0), alpha=1.0).loss(logits, batch, hard, "classification")
    assert abs(float(same)) < 1e-6
    other = Distillation(_model(1), alpha=1.0, temperature=2.0).loss(logits, batch, hard, "classification")
    assert float(other) > 0


def test_regression_follows_the_teacher_outputs() -> None:
    batch = {"numeric": torch.randn(5, 4)}
    logits = torch.zeros(5, 1)
    teacher = torch.nn.Module()
    teacher.forward = lambda b: torch.ones(5, 1)  # type: ignore[method-assign]
    loss = Distillation(teacher, alpha=1.0).loss(logits, batch, torch.tensor(7.0), "regression")
    assert float(loss) == 1.0


def test_trainer_moves_the_student_toward_the_teacher(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = Tensors({"numeric": x}, torch.randint(0, 3, (64,)))
    teacher = _model(5)
    student = _model(0)

    def gap() -> float:
        with torch.no_grad():
            return float(
                F.kl_div(
                    F.log_softmax(student({"numeric": x}), 1),
                    F.softmax(teacher({"numeric": x}), 1),
                    reduction="batchmean",
                )
            )

    before = gap()
    config = TrainConfig(epochs=30, batch_size=16, lr=0.05)
    Trainer(student, config, task="classification", seed=0, run_dir=tmp_path,
            distillation=Distillation(teacher, alpha=1.0, temperature=1.0)).fit(data, None)  # fmt: skip
    assert gap() < before / 2
    assert not any(p.requires_grad for p in teacher.parameters())


def test_remembered_teacher_outputs_give_the_same_loss_as_running_the_teacher() -> None:
    x = torch.randn(20, 4)
    data = Tensors({"numeric": x}, torch.randint(0, 3, (20,)))
    rows = torch.tensor([3, 17, 5])
    logits = torch.randn(3, 3)
    hard = torch.tensor(0.5)
    live = Distillation(_model(2)).loss(logits, {"numeric": x[rows]}, hard, "classification")
    remembered = Distillation(_model(2))
    remembered.remember(data, batch_size=7)
    cached = remembered.loss(logits, {"numeric": torch.zeros(3, 4)}, hard, "classification", rows=rows)
    assert torch.allclose(live, cached)
