"""seekforge on Flower: a ClientApp that answers for one site (its statistics, a round's local training,
its held-out figures) and a ServerApp that pools the statistics into the preprocessor, builds the
recipe's model and runs the chosen strategy, recording each round and site and keeping the global
weights of the last round done (so that a stopped server resumes from it).

The server is given the recipe without its data source: what reaches it is statistics (sums and counts),
weight arrays and metrics. Flower is imported here only; this module is imported when a federation runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seekforge.core.errors import DataError, SeekforgeError
from seekforge.core.io import atomic_dir
from seekforge.data import Preprocessor, image_sizes, merge_statistics
from seekforge.federate._deploy import CONNECT_S, ROUND_S
from seekforge.federate._site import (
    CHECKPOINT,
    MOMENT,
    ROUNDS,
    Site,
    floats,
    global_model,
    load_floats,
    numbers,
    read_checkpoint,
    resume_point,
)
from seekforge.federate.config import FederatedConfig
from seekforge.recipe import Recipe

try:  # the federated extra (seekforge.federate checks it before anything imports this module)
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.clientapp.mod import fixedclipping_mod
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp import strategy as strategies
except ImportError as exc:  # pragma: no cover - said by seekforge.federate before this import
    raise ImportError(f"seekforge.federate needs Flower: {exc}") from exc

#: a metric every site reports as 1: the weight of each site's update when differential privacy bounds
#: each site's share (Flower's noise assumes an unweighted mean)
UNIFORM = "uniform-weight"


# ------------------------------------------------------------------------------------------- the site


class SiteFailed(RuntimeError):
    """What a failing site tells the server: that it failed, not the details (see _said_here)."""


def client_app(site_of: Callable[[Context], Site], *, privacy: bool, threads: int = 1) -> ClientApp:
    """The ClientApp of the sites ``site_of`` finds from a node's context (its partition in a simulation,
    its own rows in a deployment); with ``privacy``, Flower's fixed-clipping mod clips each update."""
    app = ClientApp()
    clipped = [fixedclipping_mod] if privacy else None  # (on the updates only: a query carries no weights)

    def reply(msg: Message, site: Site, **records: Any) -> Message:
        return Message(RecordDict({**records, "site": ConfigRecord({"name": site.name})}), reply_to=msg)

    @app.query("statistics")
    def statistics(msg: Message, context: Context) -> Message:
        with _said_here(context):
            site = site_of(context)
            config = msg.content["config"]
            sizes = json.loads(str(config["image-sizes"])) if "image-sizes" in config else None
            return reply(msg, site, statistics=ConfigRecord({"json": json.dumps(site.statistics(sizes))}))

    @app.train(mods=clipped)
    def train(msg: Message, context: Context) -> Message:
        with _said_here(context):
            torch.set_num_threads(threads)
            site = site_of(context)
            config = msg.content["config"]
            weights, figures = site.train(
                msg.content["arrays"].to_torch_state_dict(), str(config["preprocessor"]),
                epochs=int(config["local-epochs"]), round_=int(config["server-round"]) + int(config["round-offset"]),
                mu=float(config.get("proximal-mu", 0.0)),
            )  # fmt: skip
            metrics = MetricRecord({**figures, UNIFORM: 1.0})
            return reply(msg, site, arrays=ArrayRecord(torch_state_dict=weights), metrics=metrics)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        with _said_here(context):
            torch.set_num_threads(threads)
            site = site_of(context)
            arrays, config = msg.content["arrays"], msg.content["config"]
            figures = site.evaluate(arrays.to_torch_state_dict(), str(config["preprocessor"]))
            return reply(msg, site, metrics=MetricRecord({**figures, UNIFORM: 1.0}))

    return app


@contextlib.contextmanager
def _said_here(context: Context) -> Iterator[None]:
    """A site's failure is said in full on the site's own console and sent to the server as its kind only:
    a message about bad data may quote a row's value, which must not leave the site."""
    try:
        yield
    except Exception as exc:
        logging.getLogger("seekforge").error("federated site (node %s) failed: %s", context.node_id, exc)
        sys.stderr.write(f"seekforge federated site failed: {type(exc).__name__}: {exc}\n")
        raise SiteFailed(f"the site failed ({type(exc).__name__}); its own console says why") from None


# ----------------------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Plan:
    """What the server knows: the recipe (its data source removed), the federation, how many sites join,
    where its records go, a callback that sees each finished round, and in a deployment the node
    registered for each site (its key's) and how long the sites may take to connect."""

    recipe: Recipe
    federated: FederatedConfig
    sites: int
    output: Path
    on_round: Callable[[dict[str, Any]], None] | None = None
    nodes: dict[int, str] | None = None
    connect_s: float = CONNECT_S


def server_app(plan: Plan) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        federation(grid, plan)

    return app


def federation(grid: Grid, plan: Plan) -> None:
    """Pool the sites' statistics, then run the strategy's rounds from the seeded model (or from the last
    round's weights a crashed run kept), writing each round, the global weights and the preprocessor to
    ``plan.output``."""
    nodes = _wait_for_sites(grid, plan)
    features = plan.recipe.features
    replies = _ask(grid, nodes, "query.statistics", RecordDict({"config": ConfigRecord({})}))
    names = {r.metadata.src_node_id: str(r.content["site"]["name"]) for r in replies}
    _check_names(names, plan.nodes)
    statistics = [json.loads(str(r.content["statistics"]["json"])) for r in replies]
    sizes = image_sizes(features, statistics)
    if any(s["inputs"][name]["at"] != size for s in statistics for name, size in sizes.items()):
        # (a site summed its images at its own most common size: asked again at the pooled one)
        again = RecordDict({"config": ConfigRecord({"image-sizes": json.dumps(sizes)})})
        replies = _ask(grid, nodes, "query.statistics", again)
        statistics = [json.loads(str(r.content["statistics"]["json"])) for r in replies]
    pre = merge_statistics(features, statistics, tokenizer_paths=plan.recipe.model.tokenizer_paths(features))
    preprocessor = json.dumps(pre.to_dict())
    done, weights, moments = _checkpoint(plan.output)
    setup = plan.output / "setup"
    if done and (setup / "preprocessor.json").is_file():  # a resume goes on with the preprocessing it began with
        began = (setup / "preprocessor.json").read_text(encoding="utf-8")
        if json.loads(began) != json.loads(preprocessor):
            logging.getLogger("seekforge").warning("the sites' statistics changed since the federation began; its "
                                                   "rounds go on with the preprocessing of round 1")  # fmt: skip
        pre, preprocessor = Preprocessor.from_dict(json.loads(began)), began
    else:
        io = plan.recipe.model.prepare_io(pre.model_io())
        with atomic_dir(setup, overwrite=True) as tmp:  # what the package is built from
            (tmp / "preprocessor.json").write_text(preprocessor, encoding="utf-8")
            (tmp / "model.json").write_text(json.dumps({"config": plan.recipe.model.model_dump(mode="json"),
                                                        "io": io.to_dict()}), encoding="utf-8")  # fmt: skip
            sites = {names[n]: {"rows": s["rows"], **({"classes": s["classes"]} if "classes" in s else {})}
                     for n, s in zip([r.metadata.src_node_id for r in replies], statistics, strict=True)}  # fmt: skip
            (tmp / "sites.json").write_text(json.dumps(sites), encoding="utf-8")
    model = global_model(plan.recipe, pre)
    if weights is not None:
        load_floats(model, weights)
    remaining = plan.federated.rounds - done
    if remaining <= 0:
        return
    strategy = _strategy(plan, names, done, moments)
    grid = _Federation(grid, set(names))  # (the strategy samples these nodes only, whoever else connects)
    config = {"preprocessor": preprocessor}
    train_config = ConfigRecord({**config, "local-epochs": plan.federated.local_epochs, "round-offset": done})
    strategy.start(grid=grid, initial_arrays=ArrayRecord(torch_state_dict=floats(model.state_dict())),
                   num_rounds=remaining, timeout=ROUND_S, train_config=train_config,
                   evaluate_config=ConfigRecord(config))  # fmt: skip


class _Federation:
    """A grid whose nodes are the federation's: a node that connects later (a stray one in a simulation's
    pool, say) is neither sampled nor heard."""

    def __init__(self, grid: Grid, nodes: set[int]) -> None:
        self._grid, self._nodes = grid, nodes

    def get_node_ids(self) -> list[int]:
        return [n for n in self._grid.get_node_ids() if n in self._nodes]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def _wait_for_sites(grid: Grid, plan: Plan) -> list[int]:
    """The nodes of the federation once connected: the node registered for each site (a deployment), or
    the first ``plan.sites`` nodes (a simulation's virtual ones)."""
    deadline = time.monotonic() + plan.connect_s
    while True:
        nodes = list(grid.get_node_ids())
        if plan.nodes is not None and set(plan.nodes) <= set(nodes):
            return list(plan.nodes)
        if plan.nodes is None and len(nodes) >= plan.sites:
            return nodes[: plan.sites]
        if time.monotonic() > deadline:
            missing = ", ".join(s for n, s in (plan.nodes or {}).items() if n not in nodes)
            raise DataError(f"{len(nodes)} of {plan.sites} sites connected within {plan.connect_s:.0f} s"
                            + (f" (not: {missing})" if missing else ""),
                            hint="start every site's node (seekforge federate site ...) against this SuperLink")  # fmt: skip
        time.sleep(1.0)


def _check_names(names: dict[int, str], registered: dict[int, str] | None) -> None:
    """Each site answers once, and in a deployment as the site whose key its node was registered with.

    Raises:
        DataError: Two nodes answer as one site, or a node as a site other than its key's.
    """
    if registered is not None:
        wrong = [f"the node registered with {registered[n]}'s key answers as {said!r}" for n, said in names.items()
                 if said != registered[n]]  # fmt: skip
        if wrong:
            raise DataError("; ".join(wrong), hint="each site runs federate site --site NAME with its own NAME.key")
    twice = sorted({s for s in names.values() if list(names.values()).count(s) > 1})
    if twice:
        raise DataError(f"more than one node answers as site {', '.join(twice)}", hint="give each site its own name")


def _ask(grid: Grid, nodes: list[int], kind: str, content: RecordDict) -> list[Message]:
    messages = [Message(content=content, dst_node_id=n, message_type=kind) for n in nodes]
    replies = list(grid.send_and_receive(messages, timeout=ROUND_S))
    failed = [r.error.reason for r in replies if r.has_error()]
    if failed or len(replies) != len(nodes):
        raise DataError(f"{len(failed) or len(nodes) - len(replies)} site(s) could not answer {kind}: "
                        f"{'; '.join(failed[:3]) or 'no reply in time'}")  # fmt: skip
    return replies


def _strategy(plan: Plan, names: dict[int, str], done: int, moments: dict[str, torch.Tensor]) -> Any:
    fed, sites = plan.federated, plan.sites
    common = {"fraction_train": fed.fraction_fit, "fraction_evaluate": 1.0, "min_available_nodes": sites,
              "min_train_nodes": max(1, math.ceil(fed.fraction_fit * sites)), "min_evaluate_nodes": sites,
              "weighted_by_key": UNIFORM if fed.privacy is not None else "num-examples"}  # fmt: skip
    kind = fed.strategy.type
    if kind == "fedprox":
        strategy: Any = strategies.FedProx(proximal_mu=fed.strategy.mu, **common)
    elif kind == "fedadam":
        strategy = strategies.FedAdam(eta=fed.strategy.eta, eta_l=plan.recipe.train.lr, tau=fed.strategy.tau, **common)
        _continue_adam(strategy, moments, done)
    else:
        strategy = strategies.FedAvg(**common)
    if fed.privacy is not None:
        strategy = strategies.DifferentialPrivacyClientSideFixedClipping(
            strategy, noise_multiplier=fed.privacy.noise_multiplier, clipping_norm=fed.privacy.clip,
            num_sampled_clients=common["min_train_nodes"],
        )  # fmt: skip
    _record_rounds(strategy, plan, names, done)
    return strategy


def _continue_adam(strategy: Any, moments: dict[str, torch.Tensor], done: int) -> None:
    """A resumed FedAdam goes on as if it had not stopped: its first and second moments (kept with the
    checkpoint) restored, and its bias correction counting the rounds done before."""
    for which in ("m_t", "v_t"):
        prefix = f"{MOMENT}{which}:"
        kept = {k.removeprefix(prefix): v.numpy() for k, v in moments.items() if k.startswith(prefix)}
        if kept:
            setattr(strategy, which, kept)
    aggregate = strategy.aggregate_train
    strategy.aggregate_train = lambda server_round, replies: aggregate(done + server_round, replies)


def _adam_moments(strategy: Any) -> dict[str, torch.Tensor]:
    """FedAdam's moments (none for another strategy), to keep with the round's weights."""
    return {f"{MOMENT}{which}:{k}": torch.from_numpy(v.copy())
            for which in ("m_t", "v_t") for k, v in (getattr(strategy, which, None) or {}).items()}  # fmt: skip


def _record_rounds(strategy: Any, plan: Plan, names: dict[int, str], done: int) -> None:
    """Wrap the strategy's aggregation so that each round's global weights are kept (atomically, with the
    round's number) and each round's figures per site are appended to ``rounds.jsonl``."""
    trained, evaluated = strategy.aggregate_train, strategy.aggregate_evaluate
    pending: dict[str, Any] = {}
    clock = {"last": time.time()}  # a round's wall time: from the last round's end (or the start) to its own

    def per_site(replies: list[Message]) -> dict[str, dict[str, float]]:
        return {names[r.metadata.src_node_id]: _figures(r.content["metrics"]) for r in replies if not r.has_error()}

    def heard(replies: Iterable[Message]) -> list[Message]:
        """The replies of the federation's nodes (the strategy asks no other: a guard all the same)."""
        return [r for r in replies if r.metadata.src_node_id in names]

    def aggregate_train(server_round: int, replies: Iterable[Message]) -> Any:
        replies = heard(replies)
        failed = [f"{names[r.metadata.src_node_id]}: {r.error.reason.strip() or '?'}" for r in replies if r.has_error()]
        if failed:
            logging.getLogger("seekforge").warning("round %d: %d site(s) failed: %s", done + server_round,
                                                   len(failed), "; ".join(failed))  # fmt: skip
        arrays, metrics = trained(server_round, replies)
        if arrays is None:
            raise SeekforgeError(f"round {done + server_round}: no site's update could be aggregated"
                                 + (f" ({'; '.join(failed[:3])})" if failed else ""))  # fmt: skip
        pending.update(arrays=arrays, failed=failed, train=per_site(replies), train_mean=_figures(metrics))
        return arrays, metrics

    def aggregate_evaluate(server_round: int, replies: Iterable[Message]) -> Any:
        replies = heard(replies)
        metrics = evaluated(server_round, replies)
        now = time.time()
        arrays = pending.pop("arrays")
        record = {"round": done + server_round, **pending, "evaluate": per_site(replies),
                  "evaluate_mean": _figures(metrics), "seconds": now - clock["last"]}  # fmt: skip
        clock["last"] = now
        # the round's line first, then its weights: a stop between the two is mended on resume (the line
        # of a round whose weights were not kept is cut, and the round runs again)
        with (plan.output / ROUNDS).open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        _save_checkpoint(plan.output, {**arrays.to_torch_state_dict(), **_adam_moments(strategy)}, done + server_round)
        pending.clear()
        if plan.on_round is not None:
            plan.on_round(record)
        return metrics

    strategy.aggregate_train, strategy.aggregate_evaluate = aggregate_train, aggregate_evaluate


def _figures(metrics: Any) -> dict[str, float]:
    return {k: v for k, v in numbers(dict(metrics or {})).items() if k != UNIFORM}


def _save_checkpoint(output: Path, weights: dict[str, torch.Tensor], round_: int) -> None:
    from safetensors.torch import save_file

    output.mkdir(parents=True, exist_ok=True)
    partial = output / f".{CHECKPOINT}.partial"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(partial), metadata={"round": str(round_)})
    os.replace(partial, output / CHECKPOINT)


def _checkpoint(output: Path) -> tuple[int, dict[str, torch.Tensor] | None, dict[str, torch.Tensor]]:
    """The last round kept in ``output``, its global weights and the strategy's moments (0, None and none
    when there is none); see :func:`resume_point`."""
    done = resume_point(output)
    if done == 0:
        return 0, None, {}
    logging.getLogger("seekforge").info("resuming the federation after round %d", done)
    _, weights, moments = read_checkpoint(output / CHECKPOINT)
    return done, weights, moments
