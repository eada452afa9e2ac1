"""A run's ``weights.jsonl`` (each epoch's per-layer weight histograms and gradient norms, written by the
trainer) read for the run's page: per layer, its distribution over epochs as quantiles worked out from the
histograms, its gradient norm and spread by epoch, and the histogram of one epoch beside the first one.

The file is read incrementally: each read takes only the lines appended since the one before (a long run's
file is not parsed again for every new epoch); a file replaced (a resumed run cuts it back atomically: a new
inode) or cut shorter is read again from its start; a line that is not an epoch's record is skipped and
counted. The files of the last :data:`KEEP` runs looked at are kept parsed."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from seekforge.studio._files import finite
from seekforge.studio._runs import parse_lines, stride

FILE = "weights.jsonl"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
KEEP = 16


class WeightLogs:
    """The weights files of runs, each kept parsed and extended as it grows (a file cut shorter, a resumed
    run's, is read again from the start)."""

    def __init__(self) -> None:
        # per file: its identity (device, inode), how far it was read, its records, its unreadable lines
        self._read: OrderedDict[Path, tuple[tuple[int, int], int, list[dict[str, Any]], int]] = OrderedDict()
        self._lock = threading.Lock()

    def records(self, run: Path) -> tuple[list[dict[str, Any]], int]:
        """The run's epoch records in order, and how many lines could not be read."""
        path = run / FILE
        with self._lock:
            identity, offset, records, bad = self._read.pop(path, ((-1, -1), 0, [], 0))
            try:
                with open(path, "rb") as handle:
                    stat = os.fstat(handle.fileno())
                    if (stat.st_dev, stat.st_ino) != identity or stat.st_size < offset:  # replaced or cut back
                        identity, offset, records, bad = (stat.st_dev, stat.st_ino), 0, [], 0
                    handle.seek(offset)
                    data = handle.read(stat.st_size - offset)
            except OSError:
                return [], 0
            end = data.rfind(b"\n") + 1  # a last line still being written waits for its newline
            found, broken = parse_lines(data[:end].split(b"\n")[:-1])
            kept = [r for r in found if isinstance(r.get("layers"), dict) and type(r.get("epoch")) is int]
            records = [*records, *kept]
            bad += len(broken) + len(found) - len(kept)
            self._read[path] = (identity, offset + end, records, bad)
            while len(self._read) > KEEP:
                self._read.popitem(last=False)
            return records, bad

    def view(self, run: Path, *, layer: str | None = None, epoch: int | None = None,
             points: int = 200) -> dict[str, Any]:  # fmt: skip
        """What the page draws for ``layer`` (default: the first), with the histogram of ``epoch`` (default:
        the last) beside the first epoch's; at most ``points`` epochs in the series."""
        records, bad = self.records(run)
        if not records:
            return {"layers": [], "bad_lines": bad}
        last = records[-1]["layers"]
        layers = [{"name": k, "shape": v.get("shape")} for k, v in last.items() if isinstance(v, dict)]
        names = [entry["name"] for entry in layers]
        chosen = layer if layer in names else names[0] if names else None
        keep = [records[i] for i in stride(len(records), points)]
        epochs = [r.get("epoch") for r in keep]
        entries = [r["layers"].get(chosen) if isinstance(r["layers"].get(chosen), dict) else {} for r in keep]
        spread = [_quantiles(e) for e in entries]
        # the epoch asked for, else the last one recorded before it (histograms every few epochs), else the last
        at = records[-1] if epoch is None else max((r for r in records if r["epoch"] <= epoch),
                                                   key=lambda r: r["epoch"], default=records[0])  # fmt: skip
        shown, first = _histogram(at, chosen), _histogram(records[0], chosen)
        return {
            "layers": layers,
            "layer": chosen,
            "epochs": epochs,
            "quantiles": {f"p{round(q * 100)}": [s[i] if s else None for s in spread] for i, q in enumerate(QUANTILES)},
            "grad_norm": [finite(e.get("grad_norm")) for e in entries],
            "std": [finite(e.get("std")) for e in entries],
            "histogram": _side_by_side(shown, first, at.get("epoch"), records[0].get("epoch")),
            "bad_lines": bad,
        }


def _histogram(record: dict[str, Any], layer: str | None) -> tuple[float, float, list[float]] | None:
    """A layer's histogram in a record (see :func:`_counts`)."""
    return _counts(record["layers"].get(layer))


def _counts(entry: Any) -> tuple[float, float, list[float]] | None:
    """A tensor's histogram: its range and its counts (anything not a finite positive count taken as 0)."""
    counts = entry.get("counts") if isinstance(entry, dict) else None
    low, high = (finite(entry.get("min")), finite(entry.get("max"))) if isinstance(entry, dict) else (None, None)
    if not isinstance(counts, list) or not counts or low is None or high is None or high < low:
        return None
    return low, high, [float(c) if finite(c) is not None and c > 0 else 0.0 for c in counts]


def _side_by_side(shown: tuple[float, float, list[float]] | None, first: tuple[float, float, list[float]] | None,
                  epoch: Any, first_epoch: Any) -> dict[str, Any] | None:  # fmt: skip
    """The histogram of ``epoch`` and the first epoch's on one grid of bins over both ranges (each bin's count
    spread evenly over its width, so the counts keep their sum)."""
    if shown is None:
        return None
    both = [h for h in (shown, first) if h is not None]
    low, high = min(h[0] for h in both), max(h[1] for h in both)
    bins = 2 * len(shown[2]) if first is not None else len(shown[2])
    if high == low:  # every value the same: one unit's width around it
        low, high = low - 0.5, high + 0.5
    width = (high - low) / bins
    answer = {"epoch": epoch, "centres": [low + (i + 0.5) * width for i in range(bins)],
              "counts": _rebin(shown, low, width, bins)}  # fmt: skip
    if first is not None and first_epoch != epoch:
        answer.update(first_epoch=first_epoch, first=_rebin(first, low, width, bins))
    return answer


def _rebin(histogram: tuple[float, float, list[float]], low: float, width: float, bins: int) -> list[float]:
    """``histogram``'s counts moved onto ``bins`` bins of ``width`` from ``low``, by overlap."""
    start, end, counts = histogram
    out = [0.0] * bins
    step = (end - start) / len(counts)
    for i, count in enumerate(counts):
        a, b = start + i * step, start + (i + 1) * step
        if count == 0:
            continue
        if b <= a:  # a constant tensor: every value at one point
            out[min(int((a - low) / width), bins - 1)] += count
            continue
        for j in range(max(int((a - low) / width), 0), min(int((b - low) / width) + 1, bins)):
            overlap = min(b, low + (j + 1) * width) - max(a, low + j * width)
            if overlap > 0:
                out[j] += count * overlap / (b - a)
    return [round(c, 3) for c in out]


def _quantiles(entry: dict[str, Any]) -> list[float] | None:
    """The :data:`QUANTILES` of a tensor's values from its histogram (linear within a bin)."""
    found = _counts(entry)
    if found is None or not sum(found[2]):
        return None
    low, high, counts = found
    total, width = sum(counts), (high - low) / len(counts)
    out, seen, i = [], 0.0, 0
    for q in QUANTILES:
        target = q * total
        while i < len(counts) - 1 and seen + counts[i] < target:
            seen += counts[i]
            i += 1
        inside = (target - seen) / counts[i] if counts[i] > 0 else 0.0
        out.append(low + (i + min(max(inside, 0.0), 1.0)) * width)
    return out
