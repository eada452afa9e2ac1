"""Configuration of compression: structured pruning, distillation and quantization-aware training, each
optional, composed in that order (prune -> distil -> QAT) into a new package whose lineage names its parent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig

Ratio = Annotated[float, Field(gt=0.0, lt=1.0)]


class PruneConfig(BaseConfig):
    """Structured pruning with torch-pruning: whole neurons, channels (and, for transformer encoders,
    attention heads and FFN width) are removed, so the model gets smaller and faster, not just sparse.

    Attributes:
        ratio: Share of the prunable channels/neurons to remove (torch-pruning's ``pruning_ratio``), or
            ``auto``: the largest ratio whose accuracy after fine-tuning stays within ``max_accuracy_drop``,
            found by bisection.
        importance: ``magnitude`` (L2 norm of the weights), ``taylor`` (weight x gradient on training
            batches) or ``lamp`` (layer-adaptive magnitude).
        scope: ``layer``: every layer loses ``ratio`` of its channels; ``global``: channels compete across
            layers, so layers that matter less lose more.
        steps: Iterative pruning: reach ``ratio`` in this many equal steps, fine-tuning after each.
        finetune_epochs: Recovery fine-tuning epochs after each step (0: none).
        keep: Module names (as in ``model.named_modules()``) never pruned; the output layer never is.
        search_steps: Ratios ``ratio: auto`` tries: ``max_ratio`` first, then bisection steps.
        max_ratio: The largest ratio ``auto`` tries.
    """

    ratio: Ratio | Literal["auto"] = 0.5
    importance: Literal["magnitude", "taylor", "lamp"] = "magnitude"
    scope: Literal["layer", "global"] = "layer"
    steps: Annotated[int, Field(ge=1, le=20)] = 1
    finetune_epochs: Annotated[int, Field(ge=0)] = 5
    keep: list[str] = []
    search_steps: Annotated[int, Field(ge=1, le=10)] = 4
    max_ratio: Ratio = 0.9


class AugmentConfig(BaseConfig):
    """Altered copies of the training texts that the teacher labels, so that a student learns the teacher
    on more rows than the labelled ones (text models only; see Tang et al., 2019).

    Attributes:
        copies: Altered copies made of every training row.
        mask: Chance that a token of a copy becomes the mask token (``[MASK]``).
        replace: Chance that a token becomes one of its nearest tokens in the teacher's embedding table.
        window: Chance that a copy keeps only a random run of half to all of its tokens.
        neighbours: Nearest tokens a replacement is drawn from.
    """

    copies: Annotated[int, Field(ge=1, le=50)] = 4
    mask: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    replace: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    window: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    neighbours: Annotated[int, Field(ge=1, le=100)] = 8

    @model_validator(mode="after")
    def _chances_add_up(self) -> AugmentConfig:
        if self.mask + self.replace > 1.0:
            raise ValueError(
                f"mask + replace must be at most 1 (a token is altered once), got {self.mask + self.replace:g}"
            )
        return self


class DistillConfig(BaseConfig):
    """Knowledge distillation: the student learns from the teacher's softened outputs as well as the labels.

    With ``prune``, the teacher is the unpruned model and the student the pruned one (recovery
    fine-tuning). With ``student``, a new, smaller model is trained from the package's model.

    Attributes:
        temperature: Softens both models' class probabilities (Hinton et al.); the loss is scaled by T^2.
        alpha: Weight of the teacher's soft targets; ``1 - alpha`` weighs the labels.
        student: A YAML file (or mapping) with a ``model:`` section, any registered model type.
        epochs: Training epochs of a new student.
        student_start: ``teacher``: a text student starts from the pretrained teacher's weights. One
            on a pretrained encoder (say ``keep_layers: 2``, ``token_rank: 128``) takes the teacher's
            fine-tuned weights wherever a parameter has the same name and shape, and its token table
            from the teacher's; one built from scratch on the teacher's vocabulary takes the teacher's
            token and position embeddings, projected on their leading principal axes to its width.
            ``own``: the student's own start (its pretrained checkpoint, or nn.Embedding's random one).
            Other students ignore it.
        augment: Train on altered copies of the training texts too, labelled by the teacher (text
            models), or None.
    """

    temperature: Annotated[float, Field(gt=0)] = 4.0
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    student: Path | dict[str, Any] | None = None
    epochs: Annotated[int, Field(ge=1)] = 20
    student_start: Literal["teacher", "own"] = "teacher"
    augment: AugmentConfig | None = None


class QuantizeConfig(BaseConfig):
    """Quantization-aware training through torchao's PT2E flow: fake-quantized fine-tuning, then a
    converted model exported as a QDQ ONNX file that onnxruntime runs in INT8.

    Attributes:
        method: ``qat``.
        epochs: Fine-tuning epochs with fake quantization.
        lr: Their learning rate; default a tenth of the fine-tuning one: the model is trained already, and
            small steps keep its weights near the float optimum while they adapt to the int8 grid.
    """

    method: Literal["qat"] = "qat"
    epochs: Annotated[int, Field(ge=1)] = 3
    lr: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _post_training_is_an_export(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") in ("int8", "ptq", "dynamic", "static"):
            raise ValueError(
                "post-training int8 needs no training and is an export: seekforge export PACKAGE --format onnx "
                "--precision int8 (static for CNNs, dynamic otherwise); --quantize qat trains for int8 first"
            )
        return data


class CompressConfig(BaseConfig):
    """The ``compress`` section of a recipe, or the options of ``seekforge compress``.

    Attributes:
        prune: Structured pruning, or None.
        distill: Distillation, or None.
        quantize: Quantization-aware training, or None.
        max_accuracy_drop: Largest accepted drop of accuracy (or R2) from the parent package: on the
            test split for each variant's verdict; on the validation split for ``prune.ratio: auto``,
            which must not choose on the rows it is judged on.
        lr: Fine-tuning learning rate (default: the recipe's ``train.lr``).
        batch_size: Fine-tuning batch size (default: the recipe's ``train.batch_size``).
    """

    prune: PruneConfig | None = None
    distill: DistillConfig | None = None
    quantize: QuantizeConfig | None = None
    max_accuracy_drop: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    lr: Annotated[float, Field(gt=0)] | None = None
    batch_size: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> CompressConfig:
        if self.prune is None and self.distill is None and self.quantize is None:
            raise ValueError("nothing to do: set prune, distill or quantize")
        if self.distill is not None and self.distill.student is None and self.prune is None:
            raise ValueError(
                "distill: without prune, distillation trains a new model; name it in distill.student "
                "(a YAML file with a model: section)"
            )
        if self.distill is not None and self.distill.student is not None and self.prune is not None:
            raise ValueError("distill.student and prune: prune the student in a second compress step instead")
        return self
