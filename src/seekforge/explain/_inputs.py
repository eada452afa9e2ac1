"""Models over several kinds of input (fusion models, sequences): SHAP values of each input as a whole (a
table's column, a text, an image, a sequence, a time's calendar parts), with shap's explainers over an
index matrix.

Each explained row and each background row is one row of a pool of encoded inputs. A row of the matrix
shap masks names, for each input, the pool row whose value that input takes: the explained row's own, or
a background row's where shap hides it. Masking an input with a background row's value is then giving the
model that row's raw value, as for a table's feature (see ``_tabular``), whatever the kind of input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seekforge.core.batch import input_keys
from seekforge.data import Preprocessor
from seekforge.runtime import datetime_columns


@dataclass(frozen=True)
class Player:
    """One input: its name and where it lives in a batch: ``(key, columns)``, columns None for the whole row."""

    name: str
    slices: tuple[tuple[str, tuple[int, ...] | None], ...]


def players(pre: Preprocessor) -> list[Player]:
    """The model's inputs in the recipe's order, each with the batch tensors (and columns) that carry it."""
    numeric = pre.numeric_columns()
    categories = list(pre.categories_)
    keys = input_keys((f.name, f.type) for f in pre.features.inputs)
    out = []
    for feature in pre.features.inputs:
        name, kind = feature.name, feature.type
        if kind in ("numeric", "binary"):
            slices: tuple[tuple[str, tuple[int, ...] | None], ...] = (("numeric", (numeric.index(name),)),)
        elif kind == "datetime":
            parts = datetime_columns(name, pre.datetimes_[name]["parts"])
            slices = (("numeric", tuple(numeric.index(p) for p in parts)),)
        elif kind == "category":
            slices = (("category", (categories.index(name),)),)
        else:  # a text, an image or a sequence: its tensors whole
            slices = tuple((key, None) for key in keys[name])
        out.append(Player(name, slices))
    return out


class InputPool:
    """The encoded inputs of the explained rows followed by the background rows, and the batches of
    index matrices over them."""

    def __init__(self, pre: Preprocessor, explained: dict[str, torch.Tensor], background: dict[str, torch.Tensor]):
        self.players = players(pre)
        self.rows = len(next(iter(explained.values())))
        self.pool = {key: torch.cat([explained[key], background[key]]) for key in explained}
        self.size = len(next(iter(self.pool.values())))

    def explained(self) -> np.ndarray:
        """``[rows, inputs]``: each explained row takes its own value of every input."""
        return np.repeat(np.arange(self.rows, dtype=np.float64)[:, None], len(self.players), axis=1)

    def background(self) -> np.ndarray:
        """``[background rows, inputs]``: each background row takes its own value of every input."""
        own = np.arange(self.rows, self.size, dtype=np.float64)[:, None]
        return np.repeat(own, len(self.players), axis=1)

    def batch(self, matrix: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch a matrix of pool rows (one column per input) stands for."""
        index = torch.from_numpy(np.rint(np.asarray(matrix)).astype(np.int64))
        out = {
            key: torch.empty((len(index), *values.shape[1:]), dtype=values.dtype) for key, values in self.pool.items()
        }
        for position, player in enumerate(self.players):
            chosen = index[:, position]
            for key, columns in player.slices:
                if columns is None:
                    out[key] = self.pool[key][chosen]
                else:
                    out[key][:, list(columns)] = self.pool[key][chosen][:, list(columns)]
        return out
