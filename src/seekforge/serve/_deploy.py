"""Deployment recipes for a served package: a Dockerfile and a Kubernetes manifest
(``seekforge serve --print-dockerfile`` / ``--print-k8s``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from seekforge import __version__

__all__ = ["dockerfile", "kubernetes"]


def _extras(manifest: dict[str, Any], backend: str) -> str:
    """The smallest install that serves the package: onnxruntime alone for a raw-input ONNX export."""
    from seekforge.serve._service import runtime_only

    return "runtime,serve" if runtime_only(manifest, backend) else "all,serve"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:50] or "model"


def dockerfile(package: Path, manifest: dict[str, Any], *, backend: str, http_port: int, grpc_port: int) -> str:
    """A Dockerfile that copies ``package`` into the image and serves it on both ports."""
    extras = _extras(manifest, backend)
    torch_line = (
        "# torch's CPU build: the default wheel pulls CUDA libraries\n"
        "RUN pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu\n"
        if extras.startswith("all")
        else ""
    )
    return f"""\
# Serves the seekforge package '{manifest["name"]}'. Build from the folder that holds the package:
#   docker build -t {_slug(manifest["name"])}:latest -f Dockerfile {package.parent}
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
{torch_line}RUN pip install --no-cache-dir "seekforge[{extras}]=={__version__}"
RUN useradd --create-home --uid 10001 seekforge
COPY --chown=seekforge {package.name}/ /srv/model/
USER seekforge
WORKDIR /home/seekforge
EXPOSE {http_port} {grpc_port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \\
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{http_port}/readyz')"
STOPSIGNAL SIGTERM
CMD ["seekforge", "serve", "/srv/model", "--host", "0.0.0.0", "--http-port", "{http_port}", \\
     "--grpc-port", "{grpc_port}", "--backend", "{backend}", "--log", "/home/seekforge/predictions.db"]
"""


def kubernetes(manifest: dict[str, Any], *, image: str | None, http_port: int, grpc_port: int) -> str:
    """A Deployment, Service and HorizontalPodAutoscaler for the image built from :func:`dockerfile`.

    Readiness is ``/readyz`` (false while starting and draining), liveness ``/healthz``; the autoscaler
    scales on ``seekforge_requests_in_flight`` per pod, which the Prometheus adapter must expose as a
    pods metric; the pod's annotations let Prometheus scrape ``/metrics``.
    """
    name = _slug(manifest["name"])
    image = image or f"{name}:latest"
    return f"""\
# seekforge package '{manifest["name"]}'. The autoscaler reads seekforge_requests_in_flight through the
# Prometheus adapter (custom.metrics.k8s.io); without it, replace the metric with a CPU target.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "{http_port}"
        prometheus.io/path: /metrics
    spec:
      terminationGracePeriodSeconds: 70  # preStop 5 s + listeners' drain 30 s + queue drain 30 s
      containers:
        - name: model
          image: {image}
          ports:
            - {{name: http, containerPort: {http_port}}}
            - {{name: grpc, containerPort: {grpc_port}}}
          readinessProbe:
            httpGet: {{path: /readyz, port: http}}
            periodSeconds: 5
            failureThreshold: 2
          lifecycle:  # let the endpoints drop the pod before it stops taking connections
            preStop:
              exec: {{command: ["sleep", "5"]}}
          livenessProbe:
            httpGet: {{path: /healthz, port: http}}
            initialDelaySeconds: 20
            periodSeconds: 10
          resources:
            requests: {{cpu: "1", memory: 1Gi}}
            limits: {{memory: 2Gi}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
    - {{name: http, port: {http_port}, targetPort: http}}
    - {{name: grpc, port: {grpc_port}, targetPort: grpc, appProtocol: grpc}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Pods
      pods:
        metric: {{name: seekforge_requests_in_flight}}
        target: {{type: AverageValue, averageValue: "16"}}
"""
