"""A package's torch model and preprocessor, seen as the function an explanation attributes: the
probability of a class (classifiers) or the predicted value in the output's own units (regressors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seekforge.core.batch import several_kinds
from seekforge.core.errors import PackageError
from seekforge.core.package import read_manifest, read_package_json
from seekforge.data import Preprocessor
from seekforge.models import build_model, infer, through_all_layers


@dataclass
class ExplainedModel:
    """The package's model in eval mode, its preprocessor and what its inputs are.

    A model with early exit is explained through all its layers (a copy without its threshold): a row's exit
    is a decision no gradient goes through, and the inputs an attribution method interpolates would leave at
    other exits than the row itself.
    """

    path: Path
    manifest: dict[str, Any]
    preprocessor: Preprocessor
    model: nn.Module
    #: models over several kinds of input: the pool of encoded rows an index matrix stands for (see _inputs)
    pool: Any = None

    def __post_init__(self) -> None:
        self.model = through_all_layers(self.model)

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def classes(self) -> list[Any]:
        return list(self.manifest["output"].get("classes") or [])

    @property
    def kind(self) -> str:
        """``text``, ``image`` or ``tabular``: which inputs the model reads; ``inputs`` when it reads more than
        one kind, more than one text or image, or a sequence (a fusion model: its inputs are attributed whole)."""
        pre = self.preprocessor
        if several_kinds(f.type for f in pre.features.inputs):
            return "inputs"
        if pre.text_:
            return "text"
        if pre.images_:
            return "image"
        return "tabular"

    @property
    def output_name(self) -> str:
        """What an attribution explains, in words."""
        if self.task == "regression":
            return f"predicted {self.manifest['output']['name']}"
        if len(self.classes) == 2:
            return f"probability of {self.classes[1]}"
        return "probability of the predicted class"

    def scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[rows, outputs]``: class probabilities, or the predicted value in the output's units (one
        column); differentiable, for gradient methods."""
        logits = self.model(batch)
        if self.task == "regression":
            pre = self.preprocessor
            return logits[:, :1] * float(pre.target_std_) + float(pre.target_mean_)
        return torch.softmax(logits, dim=1)

    def predict_scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`scores` without gradients, in batches."""
        return infer(self.model, batch, forward=self.scores, batch_size=1024)

    def targets(self, scores: torch.Tensor) -> torch.Tensor:
        """The output each row's attribution explains: the predicted value (a regressor), the second class
        (two classes: the positive one, so every row's attributions point the same way), else the predicted
        class."""
        if self.task == "regression":
            return torch.zeros(scores.shape[0], dtype=torch.long)
        if scores.shape[1] == 2:
            return torch.ones(scores.shape[0], dtype=torch.long)
        return scores.argmax(dim=1)

    def labels(self, scores: torch.Tensor) -> list[Any]:
        """Each row's prediction in the label's own values."""
        if self.task == "regression":
            return scores[:, 0].tolist()
        return [self.classes[i] for i in scores.argmax(dim=1).tolist()]


def load_model(package: str | Path) -> ExplainedModel:
    """The package's torch model (always torch: gradients and hooks need it, whatever backend serves it).

    Raises:
        PackageError: Not a package, a file was modified, or the model cannot be rebuilt.
    """
    path = Path(package)
    manifest = read_manifest(path)
    try:
        preprocessor = Preprocessor.from_dict(read_package_json(path, "preprocessor.json"))
        model = build_model(path)
    except (KeyError, ValueError, OSError) as exc:
        if isinstance(exc, PackageError):
            raise
        raise PackageError(f"{path}: cannot rebuild the model ({type(exc).__name__}: {exc})") from exc
    model.eval()
    return ExplainedModel(path, manifest, preprocessor, model)
