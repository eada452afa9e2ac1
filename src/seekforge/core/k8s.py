"""What Kubernetes manifests share, for serving (``seekforge serve --print-k8s``) and training
(``seekforge train --print-k8s``): object names and image references."""

from __future__ import annotations

import re


def k8s_name(text: str) -> str:
    """``text`` as a Kubernetes object name: lower-case letters, digits and dashes, at most 50 characters."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50] or "model"


def pinned_image(image: str | None) -> bool:
    """Whether ``image`` names one build: a digest, or a tag other than ``latest``."""
    if not image:
        return False
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")
