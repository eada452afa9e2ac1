"""The options of a job over several machines are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seekforge.core.errors import ConfigError
from seekforge.pipeline import join, run
from seekforge.pipeline._launch import Nodes
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ((2, 2, "h:1"), "--node-rank must be from 0 to 1"),
        ((2, 0, None), "--rdzv-endpoint must be host:port of node rank 0"),
        ((2, 1, "host"), "--rdzv-endpoint must be host:port"),
        ((2, 1, "host:99999"), "--rdzv-endpoint must be host:port"),
        ((0, 0, None), "--nnodes must be at least 1"),
    ],
)
def test_bad_nodes_are_refused(nodes: tuple[int, int, str | None], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Nodes(*nodes)
    assert Nodes(2, 1, "10.0.0.1:29400").endpoint == "10.0.0.1:29400" and Nodes().count == 1


def test_the_global_batch_must_split_over_every_process_of_every_machine(tmp_path: Path) -> None:
    make_tabular(100).to_csv(tmp_path / "data.csv", index=False)
    recipe = tabular_recipe(str(tmp_path / "data.csv"), batch_size=32)
    with pytest.raises(ConfigError, match=r"multiple of processes x grad_accum \(6 x 1\)"):
        run(recipe, runs_dir=tmp_path / "runs", nproc=2, nnodes=3, rdzv_endpoint="h:1")
    with pytest.raises(ConfigError, match="node rank 0 writes the package"):
        join(recipe, node_rank=0, nnodes=2, rdzv_endpoint="h:1", runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    proc = seekforge("train", "recipe.yaml", "--nnodes", "2", "--node-rank", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "--rdzv-endpoint must be host:port" in proc.stderr
    assert "Traceback" not in proc.stderr
