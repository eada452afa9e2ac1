"""What one site does with its own rows, whatever carries the messages: summarise them for the pooled
preprocessor, train the round's global weights on them for a few local epochs with seekforge's Trainer
(the recipe's optimizer and schedule), and measure the global weights on the rows it holds out. Nothing
here sends rows anywhere: its answers are statistics, weights and metrics."""

from __future__ import annotations

import functools
import json
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from seekforge.build import build_seeded_model
from seekforge.core.errors import DataError
from seekforge.core.hardware import peak_rss_mb
from seekforge.core.io import write_text_atomic
from seekforge.data import Preprocessor, derive_history, read_source, site_statistics
from seekforge.models import infer
from seekforge.recipe import Recipe
from seekforge.train import Tensors, Trainer, evaluate_logits, task_loss


def held_out(rows: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A site's rows as (training, held out): ``fraction`` of them drawn with ``seed``, at least one row
    left to train on."""
    count = min(round(len(rows) * fraction), len(rows) - 1) if len(rows) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(rows))
    return rows.iloc[np.sort(order[count:])], rows.iloc[np.sort(order[:count])]


def site_seed(recipe: Recipe, name: str) -> int:
    """A site's own seed (its held-out rows, its shuffles): the recipe's and its name's, the same wherever
    the site runs."""
    return (recipe.seed + zlib.crc32(name.encode())) % 2**31


def server_recipe(recipe: Recipe) -> Recipe:
    """The recipe the server is given: its data source (and test file) replaced by a note (the server never
    reads rows)."""
    kept = "(kept by the sites)"
    data = {**recipe.data.model_dump(mode="json"), "source": kept, "test": kept if recipe.data.test else None}
    return Recipe.model_validate({**recipe.model_dump(mode="json"), "data": data})


def floats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The floating-point tensors of a state: what the sites and the server exchange and average (a batch
    norm's step counter stays where it is: averaging, clipping or noising a count means nothing)."""
    return {k: v.detach().cpu() for k, v in state.items() if v.is_floating_point()}


def load_floats(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Put the exchanged floating-point ``weights`` into ``model``, which keeps its other buffers.

    Raises:
        DataError: The weights are not this model's (another recipe's, say).
    """
    own = model.state_dict()
    wanted = set(floats(own))
    if set(weights) != wanted:
        raise DataError(f"the global weights do not fit this site's model ({len(set(weights) ^ wanted)} tensors "
                        "differ): the sites and the server train different recipes")  # fmt: skip
    model.load_state_dict({**own, **weights})


#: the prefix of the names of a strategy's state (FedAdam's moments) kept with the global weights
MOMENT = "@moment:"


#: in a federation's folder: the global weights of the last round kept, and one line per round recorded
CHECKPOINT, ROUNDS = "global.safetensors", "rounds.jsonl"


def read_checkpoint(path: Path) -> tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A kept round of a federation: its number, the global weights, and the strategy's state kept with them
    (names prefixed with MOMENT)."""
    from safetensors.torch import load_file

    kept = load_file(str(path))
    weights = {k: v for k, v in kept.items() if not k.startswith(MOMENT)}
    return kept_round(path), weights, {k: v for k, v in kept.items() if k.startswith(MOMENT)}


def kept_round(path: Path) -> int:
    """The round whose weights ``path`` keeps (its metadata only); 0 when there is no such file."""
    if not path.is_file():
        return 0
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return int((handle.metadata() or {}).get("round", 0))


def resume_point(output: Path) -> int:
    """The last round a federation in ``output`` kept (0: none); its rounds file cut back to that round
    (a round whose line was written but whose weights were not kept runs again)."""
    done = kept_round(output / CHECKPOINT)
    cut_to_round(output / ROUNDS, done)
    return done


def cut_to_round(path: Path, done: int) -> None:
    """The JSON lines file ``path`` (one line per round) without the lines of rounds after ``done``."""
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["round"] <= done]
        if kept != lines:
            write_text_atomic(path, "".join(f"{line}\n" for line in kept))


#: the file a federation on this machine writes each site's rows to (seekforge's own, read by that site only)
SITE_FILE = "site-rows.pkl"


def write_sites(sites: dict[str, pd.DataFrame], folder: Path) -> list[tuple[str, Path, Path]]:
    """Each site's rows in its own file (``site-N/SITE_FILE``: a site's name is not made a path; a pickle,
    which keeps any cell, an image's array among them, as it is) and a work folder beside it; by site: its
    name, its file, its work folder."""
    out = []
    for number, (name, rows) in enumerate(sites.items()):
        own = folder / f"site-{number}"
        own.mkdir(parents=True, exist_ok=True)
        rows.to_pickle(own / SITE_FILE)
        out.append((name, own / SITE_FILE, own / "work"))
    return out


@functools.cache
def load_site(name: str, data: str, work: str, recipe_yaml: str) -> Site:
    """The site ``name`` with its own rows (the table file ``data``, read as the recipe reads its data), read
    once per process whatever the number of messages."""
    recipe = Recipe.model_validate(yaml.safe_load(recipe_yaml))
    assert recipe.federated is not None
    rows = site_rows(recipe, Path(data))
    train, held = held_out(rows, recipe.federated.validation, site_seed(recipe, name))
    return Site(name, recipe, train, held, work=Path(work))


def site_rows(recipe: Recipe, data: Path) -> pd.DataFrame:
    """A site's rows as the recipe reads its data (or the SITE_FILE a federation on this machine wrote), with
    the inputs derived from each entity's earlier rows (``features.history``) where the file has them not
    yet: a site's history is its own rows'."""
    rows = pd.read_pickle(data) if data.name == SITE_FILE else read_source(str(data), recipe.data.read)
    if any(f.name not in rows.columns for f in recipe.features.derived()):
        rows = derive_history(rows, recipe.features)
    return rows


def global_model(recipe: Recipe, pre: Preprocessor) -> nn.Module:
    """The recipe's model for the pooled preprocessor's inputs, its first weights fixed by the recipe's seed
    (every site and the server build the same)."""
    return build_seeded_model(recipe, recipe.model.prepare_io(pre.model_io()))


def encode_rows(pre: Preprocessor, rows: pd.DataFrame) -> Tensors:
    """``rows`` encoded by ``pre``: inputs and target."""
    return Tensors(pre.transform(rows), pre.transform_target(rows))


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics (a confusion matrix and per-class tables stay at the site)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@dataclass
class Site:
    """One site: its name, the recipe, its training and held-out rows, and a folder for the Trainer's files
    (a round's own, removed after it)."""

    name: str
    recipe: Recipe
    train_rows: pd.DataFrame
    held_rows: pd.DataFrame
    work: Path
    _encoded: dict[str, tuple[Preprocessor, Tensors, Tensors]] = field(default_factory=dict, repr=False)

    def statistics(self, image_sizes: dict[str, list[int]] | None = None) -> dict[str, Any]:
        """This site's sums and counts (its images summed at ``image_sizes``, when the server asks)."""
        features = self.recipe.features
        return site_statistics(self.train_rows, features, tokenizers=self.recipe.model.tokenizer_paths(features),
                               image_sizes=image_sizes)  # fmt: skip

    def encoded(self, preprocessor: str) -> tuple[Preprocessor, Tensors, Tensors]:
        """The pooled preprocessor (its JSON, as the server sent it) and this site's rows encoded by it."""
        if preprocessor not in self._encoded:
            pre = Preprocessor.from_dict(json.loads(preprocessor))
            train = encode_rows(pre, self.train_rows)  # (no rows held out: measured on its training rows)
            held = encode_rows(pre, self.held_rows) if len(self.held_rows) else train
            self._encoded = {preprocessor: (pre, train, held)}
        return self._encoded[preprocessor]

    def train(self, weights: dict[str, torch.Tensor], preprocessor: str, *, epochs: int, round_: int,
              mu: float = 0.0) -> tuple[dict[str, torch.Tensor], dict[str, float]]:  # fmt: skip
        """The global ``weights`` trained ``epochs`` on this site's rows; FedProx's proximal term ``mu`` / 2 *
        ||w - w_global||^2 holds them near the global ones. Returns the new weights and the round's figures."""
        pre, train, _ = self.encoded(preprocessor)
        model = global_model(self.recipe, pre)
        load_floats(model, weights)
        anchor: dict[str, torch.Tensor] = {}  # the global weights, where the Trainer put the model

        def proximal(net: nn.Module) -> torch.Tensor:
            drift = [(p - anchor[n]).pow(2).sum() for n, p in net.named_parameters() if n in anchor]
            return (mu / 2) * torch.stack(drift).sum()

        config = type(self.recipe.train).model_validate(
            {**self.recipe.train.model_dump(), "epochs": epochs, "early_stopping": None}
        )
        seed = (site_seed(self.recipe, self.name) + 1000 * round_) % 2**31  # each site and round its own shuffles
        self.work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work) as scratch:
            trainer = Trainer(model, config, task=self.recipe.task, seed=seed, run_dir=Path(scratch), quiet=True,
                              classes=getattr(pre, "classes_", None), penalty=proximal if mu > 0 else None)  # fmt: skip
            anchor.update({n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad})
            result = trainer.fit(train, None)
        last = result.history[-1] if result.history else {}
        figures = {"num-examples": float(len(train)), "train_loss": float(last.get("train_loss", float("nan"))),
                   "seconds": result.seconds, "peak_rss_mb": peak_rss_mb() or float("nan")}  # fmt: skip
        return floats(model.state_dict()), figures

    def evaluate(self, weights: dict[str, torch.Tensor], preprocessor: str) -> dict[str, float]:
        """The global ``weights`` measured on the rows this site holds out (its training rows if none)."""
        pre, _, rows = self.encoded(preprocessor)
        return measure(self.recipe, pre, weights, rows)


def measure(recipe: Recipe, pre: Preprocessor, weights: dict[str, torch.Tensor], rows: Tensors) -> dict[str, float]:
    """Global ``weights`` measured on encoded ``rows``: their number, the loss, and the same two figures
    whatever the rows (Flower averages the sites' by rows: none that a site of one class lacks)."""
    model = global_model(recipe, pre)
    load_floats(model, weights)
    logits = infer(model, rows.inputs)
    loss = float(task_loss(logits, rows.target, recipe.task))
    figures = numbers(evaluate_logits(pre, logits, rows.target))
    keys = ("accuracy", "f1_macro") if recipe.task == "classification" else ("mae", "rmse")
    return {"num-examples": float(len(rows)), "loss": loss, **{k: figures.get(k, float("nan")) for k in keys}}
