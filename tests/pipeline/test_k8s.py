"""``seekforge train --print-k8s``: a TrainJob whose command, run as the training runtime runs it on two
pods sharing one volume, trains and leaves one package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge
from tests.integration.test_train_resume import _free_port


def printed_job(tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The TrainJob ``--print-k8s`` prints for two pods, checked, and the path each pod mounts its volume at."""
    make_tabular(300).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(tabular_recipe("data.csv", epochs=2, batch_size=32)))
    printed = seekforge("train", "recipe.yaml", "--print-k8s", "--image", "registry.example/seekforge-train:1.0",
                        "--nnodes", "2", cwd=tmp_path, check=True).stdout  # fmt: skip
    claim, job = yaml.safe_load_all(printed)
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    trainer = job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 1)
    assert trainer["image"] == "registry.example/seekforge-train:1.0"
    pod = job["spec"]["podTemplateOverrides"][0]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    return job, pod["containers"][0]["volumeMounts"][0]["mountPath"]


def test_the_printed_trainjob_names_its_claim_image_and_pods(tmp_path: Path) -> None:
    job, mount = printed_job(tmp_path)
    assert any(mount in part for part in job["spec"]["trainer"]["command"])


@pytest.mark.slow  # (two pods' DDP run and one machine's, about 18 s: the default suite checks what is printed)
def test_the_printed_trainjob_trains_on_two_pods_like_one_machine(tmp_path: Path) -> None:
    job, mount = printed_job(tmp_path)
    trainer = job["spec"]["trainer"]
    volume = tmp_path / "volume"  # what every pod mounts: the recipe and its data, put there by the user
    volume.mkdir()
    for name in ("recipe.yaml", "data.csv"):
        shutil.copy(tmp_path / name, volume / name)
    command = [part.replace(mount, str(volume)) for part in trainer["command"]]
    port = str(_free_port())
    env = {**os.environ, **{e["name"]: e["value"] for e in trainer["env"]}, "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    pods = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={
                **env,
                "PET_NNODES": "2",
                "PET_NODE_RANK": str(rank),
                "PET_MASTER_ADDR": "127.0.0.1",
                "PET_MASTER_PORT": port,
            },
        )
        for rank in range(2)
    ]
    for pod_proc in pods:
        _, err = pod_proc.communicate(timeout=300)
        assert pod_proc.returncode == 0, err
    packages = list((volume / "runs").rglob("package.json"))
    assert len(packages) == 1 and "node1" not in str(packages[0])  # written once, by node rank 0
    assert list((volume / "runs" / "tiny" / "node1").glob("*/checkpoints/last.pt"))  # each node can resume
    # the same weights, bit for bit, as one machine with the same processes, threads and global batch
    seekforge("train", "recipe.yaml", "--nproc", "2", "--run-dir", "one", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"},
              check=True)  # fmt: skip
    together = load_file(packages[0].parent / "model.safetensors")
    alone = load_file(tmp_path / "one" / "package" / "model.safetensors")
    assert all(torch.equal(together[k], alone[k]) for k in alone), "two pods trained other weights than one machine"


def test_the_trainjob_needs_a_pinned_image(tmp_path: Path) -> None:
    from seekforge.core.errors import ConfigError
    from seekforge.pipeline import trainjob
    from seekforge.recipe import load_recipe

    recipe = load_recipe(tabular_recipe("data.csv"))
    for image in (None, "seekforge-train:latest", "seekforge-train", "registry:5000/seekforge-train"):
        with pytest.raises(ConfigError, match="by a tag other than latest or a digest"):
            trainjob(Path("recipe.yaml"), recipe, image=image, nnodes=2, nproc=1)
    pinned = trainjob(Path("r.yaml"), recipe, image="seekforge-train@sha256:" + "0" * 64, nnodes=1, nproc=2,
                      claim="mine", overrides=["train.lr=0.01", "name=it's"])  # fmt: skip
    (job,) = yaml.safe_load_all(pinned)  # the user's claim: no new one
    assert "--set train.lr=0.01 --set 'name=it'\"'\"'s'" in job["spec"]["trainer"]["command"][2]  # what --set said
    assert job["spec"]["podTemplateOverrides"][0]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "mine"
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(tabular_recipe("data.csv")))
    proc = seekforge("train", "recipe.yaml", "--print-k8s", cwd=tmp_path)
    assert proc.returncode == 2 and "by a tag other than latest or a digest" in proc.stderr, proc.stderr
