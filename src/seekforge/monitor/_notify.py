"""Telling someone: the monitor's verdict posted as JSON to a webhook (Slack-style incoming webhooks, an
alert manager, a CI job), so a scheduled ``seekforge monitor`` alerts without anyone reading its output."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from seekforge.core.errors import SeekforgeError


def verdict_message(result: Any) -> dict[str, Any]:
    """What the webhook gets: the status and verdict, the model version, the window, the drifted features
    and where the reports are. ``text`` repeats the verdict for chat webhooks that show only that field."""
    current = result.current
    window = current.to_dict()
    return {
        "text": f"seekforge monitor, {result.version}: {result.verdict}",
        "status": result.status,
        "verdict": result.verdict,
        "model_version": result.version,
        "package": str(result.package),
        "window": {"start": window["start"], "end": window["end"], "rows": current.drift.rows},
        "drifted_features": list(current.drift.drifted_features),
        "report": str(result.output / "monitor.html") if result.output is not None else None,
    }


def notify(url: str, message: dict[str, Any], *, timeout: float = 10.0) -> None:
    """POST ``message`` as JSON to ``url``.

    Raises:
        SeekforgeError: The URL is not http(s), or the receiver cannot be reached or answers with an error.
    """
    if not url.startswith(("http://", "https://")):
        raise SeekforgeError(f"--notify {url!r}: not an http:// or https:// URL")
    request = urllib.request.Request(
        url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise SeekforgeError(f"--notify {url}: the receiver answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SeekforgeError(f"--notify {url}: cannot reach it ({reason})", hint="the reports are written") from None
