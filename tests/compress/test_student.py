from __future__ import annotations

import pytest

from seekforge.compress._job import _parameters, student_config
from seekforge.core.errors import ConfigError
from seekforge.models import ModelIO
from seekforge.recipe import load_recipe
from tests.conftest import EXAMPLES


def test_example_student_is_a_small_cnn_for_the_digits_recipe() -> None:
    recipe = load_recipe(EXAMPLES / "digits.yaml")
    student = student_config(EXAMPLES / "students" / "small_cnn.yaml", recipe)
    io = ModelIO(output_dim=10, image_shape=(1, 8, 8))
    teacher = _parameters(recipe.model.build(io))
    assert student.type == "cnn" and _parameters(student.build(io)) < 0.1 * teacher


def test_student_that_does_not_fit_the_features_is_refused() -> None:
    recipe = load_recipe(EXAMPLES / "digits.yaml")
    with pytest.raises(ConfigError, match="model type 'mlp' takes numeric, binary, category and datetime inputs"):
        student_config({"model": {"type": "mlp"}}, recipe)
    with pytest.raises(ConfigError, match=r"unknown model 'resnet'; available: cnn, fusion, mlp, onnx, transformer"):
        student_config({"model": {"type": "resnet"}}, recipe)


def test_example_text_student_is_the_reviews_teacher_cut_to_two_layers() -> None:
    recipe = load_recipe(EXAMPLES / "reviews.yaml")
    student = student_config(EXAMPLES / "students" / "minilm_2_layers.yaml", recipe)
    assert (student.type, student.keep_layers, student.token_rank, student.vocabulary) == (
        "transformer", 2, 128, "training",
    )  # fmt: skip


def test_example_token_table_student_keeps_every_layer_of_the_reviews_teacher() -> None:
    recipe = load_recipe(EXAMPLES / "reviews.yaml")
    student = student_config(EXAMPLES / "students" / "minilm_token_table.yaml", recipe)
    assert (student.keep_layers, student.pruned_layers, student.token_rank, student.vocabulary) == (
        None, None, 128, "training",
    )  # fmt: skip
