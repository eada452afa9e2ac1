"""Deployment recipes for a served package: a Dockerfile and a Kubernetes manifest
(``seekforge serve --print-dockerfile`` / ``--print-k8s``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seekforge import __version__
from seekforge.core.errors import ConfigError
from seekforge.core.k8s import k8s_name, pinned_image

__all__ = ["SOURCE_FILES", "dockerfile", "kubernetes", "source_tree"]


def _extras(manifest: dict[str, Any], backend: str) -> str:
    """The smallest install that serves the package: onnxruntime alone for one of its ONNX exports (with the
    light extras its texts and images need), the full install for torch and OpenVINO."""
    from seekforge.core.variants import runtime_onnx_exports

    wanted = backend if backend != "auto" else manifest.get("serving", {}).get("backend", "onnxruntime")
    if wanted not in runtime_onnx_exports(manifest):
        return "all"
    kinds = {feature["type"] for feature in manifest["inputs"]}
    return "runtime,serve" + ",runtime-text" * ("text" in kinds) + ",runtime-image" * ("image" in kinds)


#: what the image's first stage copies from the source tree to build seekforge's wheel
SOURCE_FILES = ("pyproject.toml", "README.md", "constraints.txt", "src/")


def source_tree(source: Path | None = None) -> Path:
    """The seekforge source tree a Dockerfile builds from: ``source``, else the tree this seekforge is
    installed from (an editable install of a clone).

    Raises:
        ConfigError: ``source`` is not a seekforge source tree, or none was given and seekforge is not
            installed from one.
    """
    from seekforge.core import deps

    tree = deps.source_tree(source)
    if tree is None or any(not (tree / name).exists() for name in SOURCE_FILES):
        raise ConfigError(
            f"--source {source} is not a seekforge source tree (it needs {', '.join(SOURCE_FILES)})"
            if source is not None
            else "the Dockerfile builds from seekforge's source tree, and this install has none",
            hint="pass --source with a clone of seekforge (the image builds seekforge's wheel there and installs it "
            "with its constraints.txt); add --wheel FILE to install a wheel built with make wheel instead",
        )
    return tree


def dockerfile(
    package: Path,
    manifest: dict[str, Any],
    *,
    backend: str,
    http_port: int,
    grpc_port: int,
    source: Path | None = None,
    wheel: Path | None = None,
) -> str:
    """A two-stage Dockerfile that serves ``package`` on both ports.

    The first stage builds seekforge's wheel from the source tree (or takes ``wheel``, a wheel made by
    ``make wheel``); the second installs it with the tree's ``constraints.txt``, so the image runs the
    versions the tests ran, and copies the package in. The build context is the source tree; the package
    (``model``) and the wheel's folder (``wheelhouse``) come in as named contexts, which the header's
    ``docker build`` line gives.

    Raises:
        ConfigError: No seekforge source tree (see :func:`source_tree`), or ``wheel`` is not a seekforge wheel.
    """
    tree = source_tree(source)
    extras = _extras(manifest, backend)
    contexts = f"--build-context model={package.resolve()}"
    if wheel is not None:
        if not (wheel.is_file() and wheel.name.startswith("seekforge-") and wheel.suffix == ".whl"):
            raise ConfigError(f"--wheel {wheel} is not a seekforge wheel file", hint="build one with: make wheel")
        contexts += f" --build-context wheelhouse={wheel.resolve().parent}"
        first = f"FROM scratch AS wheel\nCOPY --from=wheelhouse {wheel.name} /wheels/\n"
        wheel_file = wheel.name
    else:
        first = (
            "FROM python:3.11-slim AS wheel\n"
            "WORKDIR /src\n"
            + "".join(f"COPY {name} {name if name.endswith('/') else './'}\n" for name in SOURCE_FILES)
            + "RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .\n"
        )
        wheel_file = f"seekforge-{__version__}-py3-none-any.whl"
    # torch's CPU build (pinned as 2.13.0+cpu in the lock) is on PyTorch's CPU index, not on PyPI
    index = " --extra-index-url https://download.pytorch.org/whl/cpu" if extras == "all" else ""
    return f"""\
# syntax=docker/dockerfile:1
# Serves the seekforge package '{manifest["name"]}'. Build it from the seekforge source tree:
#   docker build -t {k8s_name(manifest["name"])}:{_weights_tag(manifest)} -f Dockerfile {contexts} {tree}
{first}
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels/ /wheels/
RUN pip install --constraint /tmp/constraints.txt{index} "/wheels/{wheel_file}[{extras}]" && rm -r /wheels
RUN useradd --create-home --uid 10001 seekforge
COPY --from=model --chown=seekforge . /srv/model/
USER seekforge
WORKDIR /home/seekforge
EXPOSE {http_port} {grpc_port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \\
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{http_port}/readyz')"
STOPSIGNAL SIGTERM
CMD ["seekforge", "serve", "/srv/model", "--host", "0.0.0.0", "--http-port", "{http_port}", \\
     "--grpc-port", "{grpc_port}", "--backend", "{backend}", "--log", "/home/seekforge/predictions.db"]
"""


def kubernetes(
    manifest: dict[str, Any],
    *,
    image: str | None,
    http_port: int,
    grpc_port: int,
    backend: str = "auto",
    threads: int | None = None,
    autoscale: str = "cpu",
) -> str:
    """A StatefulSet, Service and HorizontalPodAutoscaler for the image built from :func:`dockerfile`.

    ``image`` must name one build (a tag other than ``latest``, or a digest): a rollout of ``:latest``
    cannot say which model it runs. The pod requests ``threads`` CPUs (default 1) and the server runs that
    many inference threads. Each pod keeps its prediction log on its own volume (a StatefulSet's volume
    claim), so the log outlives a restart and ``seekforge monitor`` can read it. The autoscaler targets
    70% CPU, or (``autoscale="in-flight"``) ``seekforge_requests_in_flight`` per pod through the Prometheus
    adapter. Readiness is ``/readyz`` (false while starting and draining), liveness ``/healthz``; the
    pod's annotations let Prometheus scrape ``/metrics``. The pod gets 70 s to stop: preStop 5 s (the
    endpoints drop the pod before it stops taking connections), the listeners' drain 30 s, the queue's
    drain 30 s.

    Raises:
        ConfigError: No image, an image tagged ``latest`` or untagged, or an unknown ``autoscale``.
    """
    import yaml

    from seekforge.core.errors import ConfigError

    name = k8s_name(manifest["name"])
    if image is None or not pinned_image(image):
        raise ConfigError(
            f"--print-k8s needs the image that serves the model, by a tag other than latest or a digest; got {image!r}",
            hint=f"build it from --print-dockerfile and pass --image REGISTRY/{name}:{_weights_tag(manifest)}",
        )
    if autoscale not in ("cpu", "in-flight"):
        raise ConfigError(f"autoscale must be cpu or in-flight, got {autoscale!r}")
    cpus = threads or 1
    labels = {"app": name}  # copied at each use: yaml would write anchors for a shared dict
    logs = "/home/seekforge/logs"
    container = {
        "name": "model",
        "image": image,
        "args": [
            "seekforge",
            "serve",
            "/srv/model",
            "--host",
            "0.0.0.0",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--backend",
            backend,
            "--threads",
            str(cpus),
            "--log",
            f"{logs}/predictions.db",
        ],
        "ports": [{"name": "http", "containerPort": http_port}, {"name": "grpc", "containerPort": grpc_port}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 20,
            "periodSeconds": 10,
        },
        "resources": {"requests": {"cpu": str(cpus), "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "volumeMounts": [{"name": "predictions", "mountPath": logs}],
    }
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(http_port), "prometheus.io/path": "/metrics"}
    workload = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "serviceName": name,
            "replicas": 2,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": scrape},
                "spec": {
                    "terminationGracePeriodSeconds": 70,
                    "securityContext": {"fsGroup": 10001},  # the image's user writes the volume
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "predictions"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": dict(labels),
            "ports": [
                {"name": "http", "port": http_port, "targetPort": "http"},
                {"name": "grpc", "port": grpc_port, "targetPort": "grpc", "appProtocol": "grpc"},
            ],
        },
    }
    if autoscale == "cpu":
        metric = {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    else:
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": "seekforge_requests_in_flight"},
                "target": {"type": "AverageValue", "averageValue": "16"},
            },
        }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [metric],
        },
    }
    header = f"# seekforge package {manifest['name']!r}, image {image}. " + (
        "The autoscaler targets 70% of the CPU request.\n"
        if autoscale == "cpu"
        else "The autoscaler reads seekforge_requests_in_flight\n# through the Prometheus adapter (custom.metrics.k8s.io).\n"
    )
    return header + yaml.safe_dump_all([workload, service, autoscaler], sort_keys=False)


def _weights_tag(manifest: dict[str, Any]) -> str:
    """An image tag naming the model: the start of its weights' sha256 (as ``model_version`` does)."""
    return str(manifest.get("files", {}).get("model.safetensors", ""))[:12] or "1"
