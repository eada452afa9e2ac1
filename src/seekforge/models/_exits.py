"""Early exit for a layered encoder classifier: exit heads after chosen layers, the policy that lets a row
leave at one of them, and the calibration of its threshold on held-out rows.

A row leaves at the first exit whose policy says its prediction is settled, and the rows left continue
through the next layers as a smaller batch (their padding trimmed to the longest row left), so an easy row
costs the layers up to its exit. Policies:

- ``entropy`` (DeeBERT, Xin et al. 2020): the exit's class distribution has a normalised entropy (entropy
  over ``log(classes)``, 0 to 1) below the threshold;
- ``patience`` (PABEE, Zhou et al. 2020): the predicted class is the same as at the previous
  ``threshold`` exits;
- ``length`` (routing by input complexity): a row of ``n`` tokens runs ``ceil(layers * n / threshold)``
  layers (at least to the next exit), so rows of ``threshold`` tokens or more run them all.

The threshold is chosen on the validation split: the one that saves the most layers while the accuracy of
the exits stays within ``budget.max_accuracy_drop`` of the full model's (:func:`calibrate`).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from seekforge.core.config import BaseConfig

Policy = Literal["entropy", "patience", "length"]
#: Hugging Face encoder types whose forward is embeddings, then each of ``encoder.layer`` with the bidirectional
#: mask: the ones early exit runs layer by layer
LAYERWISE = ("bert", "roberta", "xlm-roberta")


class ExitBudget(BaseConfig):
    """How much accuracy early exit may cost against the full model (a fraction: 0.01 is one point), and with
    what ``confidence`` the validation split must show it: the drop measured there plus its one-sided margin
    (a paired difference over the rows whose answer changes) stays within the budget. ``confidence: 0.5``
    takes the measured drop as it is, which a small validation split overfits."""

    max_accuracy_drop: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    confidence: Annotated[float, Field(ge=0.5, lt=1.0)] = 0.95


class EarlyExitConfig(BaseConfig):
    """Exit heads after encoder layers (``heads``: ``all`` layers but the last, or the layer numbers, 1 the
    first) and the policy that lets rows leave at them.

    ``training: joint`` trains the heads with the model (the loss is the exits' losses weighted by their
    layer number, as PABEE does); ``distill`` trains the model first, then, for ``distill_epochs`` epochs,
    only the heads, each following the final layer's class distribution on a frozen encoder (FastBERT's
    self-distillation). ``threshold`` fixes the policy's threshold; without it the threshold is calibrated
    on the validation split to ``budget``, and a package records it with ``calibrated: true`` (calibrated
    again when the model is trained again, as compression does).
    """

    heads: Literal["all"] | list[Annotated[int, Field(ge=1)]] = "all"
    policy: Policy = "entropy"
    budget: ExitBudget = ExitBudget()
    training: Literal["joint", "distill"] = "joint"
    distill_epochs: Annotated[int, Field(ge=1)] = 2
    threshold: Annotated[float, Field(ge=0.0)] | None = None
    calibrated: bool = False

    @model_validator(mode="after")
    def _valid(self) -> EarlyExitConfig:
        if isinstance(self.heads, list):
            if not self.heads:
                raise ValueError("heads: name at least one layer (or 'all')")
            if len(set(self.heads)) != len(self.heads):
                raise ValueError(f"heads: {self.heads} names a layer twice")
        if self.threshold is not None and not self.calibrated:
            if self.policy == "entropy" and self.threshold > 1:
                raise ValueError(f"threshold: {self.threshold} is not a normalised entropy (0 to 1)")
            if self.policy != "entropy" and (self.threshold < 1 or self.threshold != int(self.threshold)):
                raise ValueError(f"threshold: the {self.policy} policy's threshold is a whole number >= 1, "
                                 f"got {self.threshold}")  # fmt: skip
        return self

    def exit_layers(self, layers: int) -> list[int]:
        """The layer numbers (1-based) that have an exit, the last layer (the model's own head) included.

        Raises:
            ValueError: ``heads`` names a layer the encoder does not have (or its last one, which exits anyway).
        """
        if layers < 2:
            raise ValueError(
                "model.early_exit: a one-layer encoder has no layer before its last to exit after; give it 2 layers "
                "or more, or remove early_exit"
            )
        if self.heads == "all":
            return list(range(1, layers + 1))
        bad = [h for h in self.heads if h >= layers]
        if bad:
            raise ValueError(
                f"model.early_exit.heads: the encoder has {layers} layers, so exit heads go after layers 1 to "
                f"{layers - 1} (the last layer's is the model's own head); {bad} cannot"
            )
        return [*sorted(self.heads), layers]


class ExitHead(nn.Module):
    """The classifier after one encoder layer: its tokens normalised, pooled as the model pools, then a
    dense layer with tanh (DeeBERT's off-ramp) and the output layer."""

    def __init__(self, width: int, outputs: int, *, dropout: float, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.norm = nn.LayerNorm(width)
        self.dense = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, outputs)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(pool(self.norm(hidden), mask, self.pooling)))))


def pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """``[rows, tokens, width]`` -> ``[rows, width]``: the first token's state, or the mean over real tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def normalised_entropy(logits: Tensor) -> Tensor:
    """Entropy of each row's class distribution over ``log(classes)``: 0 certain, 1 uniform."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1) / math.log(max(logits.shape[-1], 2))


@dataclass(frozen=True)
class ExitPolicy:
    """When a row leaves: ``kind`` and ``threshold`` over exits after ``exits`` (1-based layer numbers, the
    last one the encoder's last layer). A ``threshold`` of None never lets a row leave early."""

    kind: str
    threshold: float | None
    exits: tuple[int, ...]

    def start(self, mask: Tensor) -> dict[str, Tensor]:
        """The per-row state the policy carries from exit to exit, for rows with ``mask``."""
        rows, device = mask.shape[0], mask.device
        state = {"streak": torch.zeros(rows, dtype=torch.long, device=device),
                 "last": torch.full((rows,), -1, dtype=torch.long, device=device)}  # fmt: skip
        if self.kind == "length":
            state["planned"] = self.planned_exit(mask.sum(1))
        return state

    def planned_exit(self, lengths: Tensor) -> Tensor:
        """The exit (index into ``exits``) the length policy sends rows of ``lengths`` tokens to."""
        last = len(self.exits) - 1
        if self.threshold is None:
            return torch.full_like(lengths, last)
        layers = self.exits[-1]
        needed = torch.ceil(layers * lengths.double() / self.threshold).clamp(min=1, max=layers)
        # the first exit at or after the layers needed
        exits = torch.tensor(self.exits, dtype=torch.double, device=lengths.device)
        return torch.searchsorted(exits, needed).clamp(max=last)

    def leave(self, k: int, logits: Tensor, state: dict[str, Tensor]) -> Tensor:
        """Which rows leave at exit ``k`` (an index into ``exits``) given its ``logits``; updates ``state``."""
        if k == len(self.exits) - 1:
            return torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
        if self.kind == "length":
            return state["planned"] == k
        if self.kind == "patience":
            predicted = logits.argmax(-1)
            state["streak"] = torch.where(predicted == state["last"], state["streak"] + 1, 0)
            state["last"] = predicted
            return state["streak"] >= (self.threshold if self.threshold is not None else len(self.exits))
        if self.threshold is None:
            return torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
        return normalised_entropy(logits) < self.threshold

    def route(self, exit_logits: Sequence[Tensor], mask: Tensor) -> Tensor:
        """The exit (index into ``exits``) each row leaves at, given every exit's logits for every row
        (``exit_logits[k]`` is ``[rows, classes]``): what running the rows through would decide."""
        state = self.start(mask)
        chosen = torch.full((mask.shape[0],), len(self.exits) - 1, dtype=torch.long)
        open_ = torch.ones(mask.shape[0], dtype=torch.bool)
        for k, logits in enumerate(exit_logits):
            leave = self.leave(k, logits, state) & open_
            chosen[leave] = k
            open_ &= ~leave
        return chosen


class Departures:
    """The rows of one batch leaving a model with early exit, exit by exit (the torch model and the
    onnxruntime chain keep their books here, so that both decide alike).

    After each exit's logits, :meth:`leave` records the rows that leave there and says which go on;
    :attr:`mask` is then the token mask of the rows left, their padding trimmed to the longest of them;
    :meth:`result` puts every row's logits and exit layer back in the batch's order.
    """

    def __init__(self, policy: ExitPolicy, mask: Tensor) -> None:
        self.policy, self.mask = policy, mask
        self.state = policy.start(mask)
        self.rows = torch.arange(mask.shape[0], device=mask.device)  # the batch's positions of the rows left
        self.done: list[tuple[Tensor, Tensor, int]] = []
        self.finished = False

    def leave(self, k: int, logits: Tensor) -> tuple[Tensor, int] | None:
        """Record the rows that leave at exit ``k`` (an index into the policy's exits) given its ``logits``.
        None when the rows left are the same; else which of them stay (positions in the batch as it was) and
        how many tokens to keep of them. When every row has left, :attr:`finished` is set."""
        leave = self.policy.leave(k, logits, self.state)
        number = self.policy.exits[k]
        if bool(leave.all()):
            self.done.append((self.rows, logits, number))
            self.finished = True
            return None
        if not bool(leave.any()):
            return None
        self.done.append((self.rows[leave], logits[leave], number))
        stay = (~leave).nonzero().squeeze(1)
        self.rows, self.mask = self.rows[stay], self.mask[stay]
        self.state = {name: value[stay] for name, value in self.state.items()}
        length = max(int(self.mask.sum(1).max()), 1)
        self.mask = self.mask[:, :length]
        return stay, length

    def result(self) -> tuple[Tensor, Tensor]:
        """Every row's logits at its exit and that exit's layer number, in the batch's order."""
        order = torch.cat([rows for rows, _, _ in self.done])
        logits = torch.cat([x for _, x, _ in self.done])
        layers = torch.cat([torch.full((len(r),), n, dtype=torch.long, device=r.device) for r, _, n in self.done])
        back = torch.empty_like(order)
        back[order] = torch.arange(len(order), device=order.device)
        return logits[back], layers[back]


def through_all_layers(model: nn.Module) -> nn.Module:
    """``model`` itself, or for a model with early exit a copy whose every row runs all its layers (a teacher,
    a model to explain or to compare with)."""
    if getattr(model, "policy", None) is None:
        return model
    copied = copy.deepcopy(model)
    copied.set_threshold(None)  # type: ignore[operator]
    return copied


def candidates(kind: str, exit_logits: Sequence[Tensor], lengths: Tensor) -> list[float]:
    """Thresholds worth trying for ``kind``, the ones that let no row leave early first."""
    if kind == "patience":
        return [float(p) for p in range(len(exit_logits) - 1, 0, -1)]
    if kind == "length":
        points = torch.quantile(lengths.double(), torch.linspace(0, 1, 41, dtype=torch.double))
        found = {float(math.ceil(v * m)) for v in points.tolist() for m in (1, 1.5, 2, 3, 4, 6, 8)}
        return [1.0, *sorted(t for t in found if t > 1)]
    early = torch.cat([normalised_entropy(x) for x in exit_logits[:-1]]) if len(exit_logits) > 1 else torch.zeros(0)
    if not len(early):
        return [0.0]
    grid = torch.quantile(early.double(), torch.linspace(0, 1, 101, dtype=torch.double)).tolist()
    return [0.0, *sorted({round(v, 6) + 1e-6 for v in grid})]


def point(policy: ExitPolicy, exit_logits: Sequence[Tensor], target: Tensor, mask: Tensor) -> dict[str, Any]:
    """What ``policy`` gives on rows with every exit's logits: its threshold, the accuracy, the mean layers
    run and the rows leaving at each exit."""
    chosen = policy.route(exit_logits, mask)
    predicted = torch.stack([x.argmax(-1) for x in exit_logits])[chosen, torch.arange(len(target))]
    right, full_right = predicted == target, exit_logits[-1].argmax(-1) == target
    return {
        "threshold": policy.threshold,
        "accuracy": float(right.double().mean()),
        "mean_layers": float(torch.tensor(policy.exits, dtype=torch.double)[chosen].mean()),
        "exits": torch.bincount(chosen, minlength=len(policy.exits)).tolist(),
        "lost": int((full_right & ~right).sum()),  # rows the full model gets right and the exits wrong
        "gained": int((right & ~full_right).sum()),
    }


def drop_bound(found: dict[str, Any], rows: int, confidence: float) -> float:
    """The accuracy drop of a :func:`point` against the full model, plus its one-sided margin at
    ``confidence`` (the standard error of a paired difference: only rows whose answer changes count)."""
    import statistics

    lost, gained = found["lost"], found["gained"]
    drop = (lost - gained) / rows
    error = math.sqrt(max(lost + gained - (lost - gained) ** 2 / rows, 0.0)) / rows
    return drop + statistics.NormalDist().inv_cdf(confidence) * error


def calibrate(
    config: EarlyExitConfig, exits: Sequence[int], exit_logits: Sequence[Tensor], target: Tensor, mask: Tensor
) -> dict[str, Any]:
    """The threshold of ``config.policy`` that runs the fewest layers on the rows (``exit_logits``: each
    exit's logits for every row, ``target`` their classes, ``mask`` their tokens) whose accuracy drop against
    the full model is within ``config.budget`` (see :class:`ExitBudget` and :func:`drop_bound`), and the curve
    it was chosen from: ``{"threshold", "met", "accuracy_full", "chosen", "curve": [{threshold, accuracy,
    mean_layers, exits, lost, gained, drop_bound}]}``.

    ``met`` is False when no threshold but the ones that never exit early met the budget; the threshold
    is then one of those (the model runs all its layers).
    """
    full = float((exit_logits[-1].argmax(-1) == target).double().mean())
    curve = [
        point(ExitPolicy(config.policy, threshold, tuple(exits)), exit_logits, target, mask)
        for threshold in candidates(config.policy, exit_logits, mask.sum(1))
    ]
    for found in curve:
        found["drop_bound"] = drop_bound(found, len(target), config.budget.confidence)
    allowed = [c for c in curve if c["drop_bound"] <= config.budget.max_accuracy_drop + 1e-12]
    best = min(allowed, key=lambda c: (round(c["mean_layers"], 9), -c["accuracy"]))
    met = best["mean_layers"] < exits[-1]
    if not met:
        best = curve[0]
    return {"threshold": best["threshold"], "met": met, "accuracy_full": full, "chosen": best, "curve": curve}


class LayerwiseExits:
    """Early exit for an encoder classifier (mixed into ``TextTransformer``): the encoder run layer by
    layer, exit heads read after their layers, rows leaving as the policy says.

    The host module has ``hf`` (a Hugging Face BERT-like encoder in ``encoder``, else a scratch encoder
    with ``embed``, ``position``, ``encoder.layers`` and ``norm``), ``head``, ``dropout``, ``pooling``,
    ``frozen`` and ``checkpointing``.
    """

    exit_heads: nn.ModuleList | None
    exit_layers: list[int]
    policy: ExitPolicy | None
    #: ``joint``: the exits' losses join the model's; ``distill``: only the exit heads learn, from the final
    #: layer; ``off``: training ignores the exits.
    exit_training: str

    def init_exits(self, config: EarlyExitConfig | None, width: int, outputs: int, dropout: float) -> None:
        from seekforge.core.errors import ConfigError

        self.exit_heads, self.exit_layers, self.policy, self.exit_training = None, [], None, "off"
        #: epochs the exit heads learn after the model (``training: distill``); 0: they learn with it
        self.distill_epochs = 0
        self._exit_outputs: tuple[list[Tensor], Tensor] | None = None
        if config is None:
            return
        try:
            self.exit_layers = config.exit_layers(len(self.blocks()))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        pooling = self.pooling  # type: ignore[attr-defined]
        heads = [ExitHead(width, outputs, dropout=dropout, pooling=pooling) for _ in self.exit_layers[:-1]]
        self.exit_heads = nn.ModuleList(heads)
        self.policy = ExitPolicy(config.policy, config.threshold, tuple(self.exit_layers))
        self.exit_training = "joint" if config.training == "joint" else "off"
        self.distill_epochs = config.distill_epochs if config.training == "distill" else 0

    def set_threshold(self, threshold: float | None) -> None:
        assert self.policy is not None
        self.policy = ExitPolicy(self.policy.kind, threshold, self.policy.exits)

    # ------------------------------------------------------------------------------ the encoder, layerwise

    def _base(self) -> nn.Module:
        encoder = self.encoder  # type: ignore[attr-defined]
        return encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder

    def blocks(self) -> list[nn.Module]:
        """The encoder's layers, in order.

        Raises:
            ConfigError: A pretrained encoder laid out other than BERT's (``encoder.layer``).
        """
        from seekforge.core.errors import ConfigError

        if not self.hf:  # type: ignore[attr-defined]
            return list(self.encoder.layers)  # type: ignore[attr-defined]
        base = self._base()
        kind = getattr(base.config, "model_type", type(base).__name__)
        found = getattr(getattr(base, "encoder", None), "layer", None)
        if kind not in LAYERWISE or not isinstance(found, nn.ModuleList):
            raise ConfigError(
                f"early exit runs a pretrained encoder layer by layer as its own forward does, which seekforge "
                f"knows for {', '.join(LAYERWISE)} encoders (MiniLM is one); this one is {kind}"
            )
        from seekforge.core.deps import install_command, require

        if not hasattr(require("transformers.masking_utils", purpose="early exit"), "create_bidirectional_mask"):
            raise ConfigError(
                "early exit on a pretrained encoder needs a transformers with masking_utils.create_bidirectional_mask "
                "(5.0 or later)",
                hint=f"install the locked versions: {install_command('transformers')}",
            )
        return list(found)

    def embedded(self, ids: Tensor) -> Tensor:
        """The tokens' states before the first layer."""
        if self.hf:  # type: ignore[attr-defined]
            return self._base().embeddings(input_ids=ids)  # type: ignore[no-any-return]
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.embed(ids) + self.position(positions)[None]  # type: ignore[attr-defined,no-any-return]

    def layer_mask(self, hidden: Tensor, mask: Tensor) -> Any:
        """What every layer takes as its mask for rows with token ``mask``."""
        if not self.hf:  # type: ignore[attr-defined]
            return mask == 0
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self._base().config, inputs_embeds=hidden, attention_mask=mask)

    def run_layer(self, block: nn.Module, hidden: Tensor, layer_mask: Any) -> Tensor:
        if self.hf:  # type: ignore[attr-defined]
            out = block(hidden, layer_mask)
            return out[0] if isinstance(out, tuple) else out  # type: ignore[no-any-return]
        if self.checkpointing and self.training and torch.is_grad_enabled():  # type: ignore[attr-defined]
            from torch.utils.checkpoint import checkpoint

            return checkpoint(block, hidden, None, layer_mask, use_reentrant=False)  # type: ignore[no-any-return]
        return block(hidden, src_key_padding_mask=layer_mask)  # type: ignore[no-any-return]

    def exit_logits(self, k: int, hidden: Tensor, mask: Tensor) -> Tensor:
        """Exit ``k``'s logits from the states after its layer (the last exit is the model's own head)."""
        assert self.exit_heads is not None
        if k < len(self.exit_heads):
            return self.exit_heads[k](hidden, mask)  # type: ignore[no-any-return]
        final = hidden if self.hf else self.norm(hidden)  # type: ignore[attr-defined]
        return self.head(self.dropout(pool(final, mask, self.pooling)))  # type: ignore[attr-defined,no-any-return]

    def all_exits(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """Every exit's logits for every row (no row leaves)."""
        return [self.exit_logits(k, states, batch["attention_mask"]) for k, states in enumerate(self._states(batch))]

    def exit_outputs(self, batch: dict[str, Tensor]) -> Tensor:
        """:meth:`all_exits` stacked, ``[rows, exits, classes]`` (for :func:`~seekforge.models.infer`)."""
        return torch.stack(self.all_exits(batch), dim=1)

    # ----------------------------------------------------------------------------------------- training

    def exits_forward(self, batch: dict[str, Tensor]) -> Tensor:
        """In training, the final logits, every exit's kept for :meth:`exit_loss`; in eval, :meth:`routed`'s."""
        if not self.training:  # type: ignore[attr-defined]
            return self.routed(batch)[0]
        mask, distilling = batch["attention_mask"], self.exit_training == "distill"
        with torch.no_grad() if self.frozen or distilling else contextlib.nullcontext():  # type: ignore[attr-defined]
            states = self._states(batch)
        with torch.no_grad() if distilling else contextlib.nullcontext():  # the final layer teaches
            final = self.exit_logits(len(states) - 1, states[-1], mask)
        self._exit_outputs = ([self.exit_logits(k, s, mask) for k, s in enumerate(states[:-1])], final)
        return final

    def _states(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """The tokens' states after each layer that has an exit (the last layer's last)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        hidden = self.embedded(ids)
        layer_mask = self.layer_mask(hidden, mask)
        states = []
        for number, block in enumerate(self.blocks(), start=1):
            hidden = self.run_layer(block, hidden, layer_mask)
            if number in self.exit_layers:
                states.append(hidden)
        return states

    def exit_loss(self, loss: Tensor, loss_of: Any) -> Tensor:
        """The training loss with the exits' part: ``joint``, the exits' losses (``loss_of(logits)``) and the
        final ``loss`` weighted by their layer numbers; ``distill``, the exits' KL divergence from the final
        layer's class distribution (``loss`` itself then trains nothing)."""
        found, self._exit_outputs = self._exit_outputs, None
        if found is None or self.exit_training == "off":
            return loss
        exits, final = found
        if self.exit_training == "distill":
            teacher = torch.log_softmax(final.detach().float(), dim=-1)
            kl = [torch.nn.functional.kl_div(torch.log_softmax(e.float(), -1), teacher, log_target=True,
                                             reduction="batchmean") for e in exits]  # fmt: skip
            return torch.stack(kl).mean()
        weights = self.exit_layers
        total = sum((w * loss_of(e.float()) for w, e in zip(weights, exits, strict=False)), weights[-1] * loss)
        return total / sum(weights)

    # ---------------------------------------------------------------------------------------- inference

    def routed(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The logits of each row at the exit it leaves at, and that exit's layer number: the batch runs layer
        by layer, the rows that leave at an exit are done, the others go on as a smaller batch (their
        padding trimmed to the longest row left)."""
        assert self.policy is not None
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.policy.threshold is None:  # no row leaves early: the plain model, no exit head computed
            last = len(self.exit_layers) - 1
            return self.forward_to(batch, last), torch.full((ids.shape[0],), self.exit_layers[last], device=ids.device)
        hidden = self.embedded(ids)
        layer_mask = self.layer_mask(hidden, mask)
        going = Departures(self.policy, mask)
        k = 0
        for number, block in enumerate(self.blocks(), start=1):
            hidden = self.run_layer(block, hidden, layer_mask)
            if number != self.exit_layers[k]:
                continue
            staying = going.leave(k, self.exit_logits(k, hidden, going.mask))
            k += 1
            if going.finished:
                break
            if staying is not None:
                stay, length = staying
                hidden = hidden[stay, :length]
                layer_mask = self.layer_mask(hidden, going.mask)
        return going.result()

    def segments(self) -> list[nn.Module]:
        """The model cut at its exits, for export: segment ``k`` runs the layers after exit ``k - 1`` up to exit
        ``k`` and gives their states (``hidden``) and exit ``k``'s logits; the first takes the token ids, the
        others the states before them, and the last gives its logits alone. Chained, with rows leaving
        between them as the policy says, they compute what :meth:`routed` does."""
        bounds = [0, *self.exit_layers]
        return [ExitSegment(self, k, bounds[k], bounds[k + 1]) for k in range(len(self.exit_layers))]

    def forward_to(self, batch: dict[str, Tensor], k: int) -> Tensor:
        """Exit ``k``'s logits, running only the layers up to it (every row leaves there)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        hidden = self.embedded(ids)
        layer_mask = self.layer_mask(hidden, mask)
        for block in self.blocks()[: self.exit_layers[k]]:
            hidden = self.run_layer(block, hidden, layer_mask)
        return self.exit_logits(k, hidden, mask)


def calibrate_model(
    model: nn.Module, config: EarlyExitConfig, inputs: dict[str, Tensor] | None, target: Tensor | None
) -> dict[str, Any]:
    """Choose ``model``'s exit threshold on held-out rows (``inputs`` encoded, ``target`` their classes) and
    set it on the model; a threshold the recipe fixed is kept. The record says what was chosen, how the
    accuracy and the layers run go with the threshold, and whether the budget was met (see :func:`calibrate`).
    Without rows, a fixed threshold is taken as it is and there is no curve."""
    import warnings

    from seekforge.models._infer import infer

    assert isinstance(model, LayerwiseExits) and model.policy is not None
    record: dict[str, Any] = {
        "policy": config.policy,
        "training": config.training,
        "exits": list(model.exit_layers),
        "layers": model.exit_layers[-1],
        "budget": config.budget.model_dump(),
    }
    fixed = config.threshold is not None and not config.calibrated
    if inputs is None or target is None or not len(target):
        model.set_threshold(config.threshold)
        return {**record, "threshold": config.threshold, "calibrated": not fixed}
    device = next(model.parameters()).device  # type: ignore[attr-defined]  # where training left it
    outputs = infer(model, inputs, forward=model.exit_outputs, device=device)  # [rows, exits, classes]
    found = calibrate(config, model.exit_layers, list(outputs.unbind(1)), target, inputs["attention_mask"])
    if fixed:  # the recipe's own: its point on the curve
        assert config.threshold is not None
        policy = ExitPolicy(config.policy, config.threshold, tuple(model.exit_layers))
        found["chosen"] = point(policy, list(outputs.unbind(1)), target, inputs["attention_mask"])
        found["chosen"]["drop_bound"] = drop_bound(found["chosen"], len(target), config.budget.confidence)
        found["threshold"], found["met"] = config.threshold, None
    elif not found["met"]:
        warnings.warn(
            f"early exit: no {config.policy} threshold saves layers while the validation split shows, with "
            f"{config.budget.confidence:g} confidence, an accuracy within {config.budget.max_accuracy_drop:g} of the "
            f"full model's ({found['accuracy_full']:.4f} on {len(target)} rows); the model runs all its layers "
            "(raise budget.max_accuracy_drop, lower budget.confidence, validate on more rows, or train longer)",
            RuntimeWarning,
            stacklevel=2,
        )
        found["threshold"] = None
    model.set_threshold(found["threshold"])
    return {**record, **found, "calibrated": not fixed, "rows": len(target)}


@torch.inference_mode()
def infer_exits(model: nn.Module, inputs: dict[str, Tensor], *, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """Every row's logits at the exit it leaves at, and that exit's layer number, batch by batch (eval mode):
    what :func:`~seekforge.models.infer` computes, with the exit layers."""
    from seekforge.models._infer import collate, num_rows

    assert isinstance(model, LayerwiseExits)
    was = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    logits, layers = [], []
    for start in range(0, num_rows(inputs), batch_size):
        out, exits = model.routed(collate(inputs, slice(start, start + batch_size)))
        logits.append(out.float())
        layers.append(exits)
    model.train(was)  # type: ignore[attr-defined]
    return (torch.cat(logits), torch.cat(layers)) if logits else (torch.empty(0), torch.empty(0, dtype=torch.long))


@torch.inference_mode()
def exit_latency(model: nn.Module, inputs: dict[str, Tensor], *, rows: int = 16, repeats: int = 3) -> list[float]:
    """Milliseconds per row (batch 1) to run the first ``rows`` rows to each exit and out of it: what a row
    leaving there costs. The median of ``repeats`` passes over the rows, after one pass to warm up."""
    import statistics
    import time

    from seekforge.models._infer import collate, num_rows

    assert isinstance(model, LayerwiseExits)
    model.eval()  # type: ignore[attr-defined]
    count = min(rows, num_rows(inputs))
    batches = [collate(inputs, slice(i, i + 1)) for i in range(count)]
    out = []
    for k in range(len(model.exit_layers)):
        passes = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            for batch in batches:
                model.forward_to(batch, k)
            passes.append((time.perf_counter() - started) * 1000 / max(count, 1))
        out.append(statistics.median(passes[1:]))
    return out


class ExitSegment(nn.Module):
    """Layers ``start`` to ``stop`` (0-based, ``stop`` excluded) of a model with early exit and the exit after
    them: ``{"input_ids" | "hidden", "attention_mask"}`` in, ``(states, logits)`` out (the last segment's
    logits alone), ``states`` being the next segment's ``hidden``. See :meth:`LayerwiseExits.segments`."""

    def __init__(self, model: LayerwiseExits, k: int, start: int, stop: int) -> None:
        super().__init__()
        self.model = model
        self.k, self.start, self.stop = k, start, stop
        self.last = k == len(model.exit_layers) - 1

    @property
    def inputs(self) -> tuple[str, str]:
        return ("input_ids" if self.k == 0 else "hidden", "attention_mask")

    @property
    def outputs(self) -> tuple[str, ...]:
        return ("logits",) if self.last else ("states", "logits")  # the next segment's "hidden"

    def forward(self, batch: dict[str, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        model, mask = self.model, batch["attention_mask"]
        hidden = model.embedded(batch["input_ids"]) if self.k == 0 else batch["hidden"]
        layer_mask = model.layer_mask(hidden, mask)
        for block in model.blocks()[self.start : self.stop]:
            hidden = model.run_layer(block, hidden, layer_mask)
        logits = model.exit_logits(self.k, hidden, mask)
        return logits if self.last else (hidden, logits)
