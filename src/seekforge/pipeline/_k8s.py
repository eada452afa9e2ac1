"""``seekforge train --print-k8s``: a Kubeflow Trainer ``TrainJob`` that runs the same ``seekforge train``
on several pods, each pod one node of the job, over a shared volume."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from seekforge.core.errors import ConfigError
from seekforge.core.k8s import k8s_name, pinned_image
from seekforge.recipe import Recipe

#: Where the pods mount the shared volume: the recipe, its data and the runs live there.
WORKDIR = "/work"


def trainjob(
    recipe_file: Path,
    recipe: Recipe,
    *,
    image: str | None,
    nnodes: int,
    nproc: int,
    claim: str | None = None,
    storage: str = "20Gi",
    runtime: str = "torch-distributed",
    overrides: Sequence[str] = (),
) -> str:
    """A Kubeflow Trainer ``TrainJob`` (``trainer.kubeflow.org/v1alpha1``, on the ``runtime`` training
    runtime) running ``seekforge train`` on ``nnodes`` pods of ``nproc`` processes each, and, without a
    ``claim`` of the user's, the ReadWriteMany claim it mounts at ``/work``.

    Every pod reads the recipe and its data from the claim, and node rank 0 writes the package to
    ``/work/runs/<name>/<stamp>/package``. The runtime's torch plugin sets ``PET_NNODES``,
    ``PET_NODE_RANK``, ``PET_MASTER_ADDR`` and ``PET_MASTER_PORT``, which become seekforge's own options;
    ``overrides`` (``--set``) go into the pods' command as they are.

    Raises:
        ConfigError: No image, or one tagged ``latest`` or untagged.
    """
    import yaml

    name = k8s_name(recipe.name)
    if not pinned_image(image):
        raise ConfigError(
            f"--print-k8s needs an image with seekforge installed, by a tag other than latest or a digest; got {image!r}",
            hint="build one that installs seekforge[train] from its source tree, and pass --image REGISTRY/seekforge-train:TAG",
        )
    claim_name = claim or f"{name}-work"
    recipe_in = f"{WORKDIR}/{recipe_file.name}"
    script = (
        f"exec seekforge train {shlex.quote(recipe_in)} --runs-dir {WORKDIR}/runs --nproc {nproc} "
        + "".join(f"--set {shlex.quote(item)} " for item in overrides)
        + '--nnodes "$PET_NNODES" --node-rank "$PET_NODE_RANK" --rdzv-endpoint "$PET_MASTER_ADDR:$PET_MASTER_PORT"'
    )
    documents: list[dict[str, object]] = []
    if claim is None:
        documents.append({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim_name, "labels": {"app": name}},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": storage}}},
        })  # fmt: skip
    documents.append({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "runtimeRef": {"name": runtime},
            "trainer": {
                "image": image,
                "command": ["sh", "-c", script],
                "numNodes": nnodes,
                "numProcPerNode": nproc,
                "resourcesPerNode": {"requests": {"cpu": str(nproc)}},
                "env": [{"name": "OMP_NUM_THREADS", "value": "1"}, {"name": "SEEKFORGE_NO_PROGRESS", "value": "1"}],
            },
            "podTemplateOverrides": [{
                "targetJobs": [{"name": "node"}],
                "spec": {
                    "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": claim_name}}],
                    "containers": [{"name": "node", "volumeMounts": [{"name": "work", "mountPath": WORKDIR}]}],
                },
            }],
        },
    })  # fmt: skip
    header = (
        f"# seekforge train {recipe_file.name} on {nnodes} node(s) x {nproc} process(es), Kubeflow Trainer v2.\n"
        f"# 1. put {recipe_file.name} and its data (data.source, relative to the recipe) on the claim {claim_name}\n"
        f"#    at {WORKDIR}/, e.g. with kubectl cp through a pod that mounts it;\n"
        f"# 2. kubectl apply -f this file; node rank 0 writes the package to {WORKDIR}/runs/{recipe.name}/<stamp>/package\n"
        "#    (the other nodes keep only their checkpoints, under runs/<name>/node<R>/).\n"
    )
    return header + yaml.safe_dump_all(documents, sort_keys=False)
