"""Claim: `seekforge data profile` and `seekforge data clean` (without label issues) handle a 1,000,000-row by
20-column CSV in well under the machine's memory: peak resident memory below 4x the file's size.

The CSV is made with a fixed seed: 13 float columns, 3 integer columns, 2 category columns, a yes/no flag
and a 3-class label, with 1% missing cells, 0.5% exact duplicate rows and 0.1% unparseable cells ('?') in
one numeric column. Each command runs in its own process (the real CLI); its peak resident set size is read
from the operating system when it exits. Beside them, for scale: a bare `pandas.read_csv` of the same file
in its own process.

    python benchmarks/large_csv.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from seekforge.core.hardware import hardware

CLEAN_CONFIG = """label: label
clean:
  deduplicate: {exact: true, near: true}
  coerce: true
  missing: {strategy: median}
  outliers: {method: zscore, action: flag}
  label_issues: {action: none}
  columns: {drop_id_like: true, drop_constant: true, rare_share: 0.001}
"""


def make_csv(path: Path, rows: int, seed: int = 0, chunk: int = 100_000) -> None:
    """Write the table in chunks, so making it does not hold it all in memory."""
    rng = np.random.default_rng(seed)
    cities = np.array([f"city_{i:02d}" for i in range(40)])
    plans = np.array(["basic", "plus", "pro", "team", "enterprise"])
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            part = {f"f{i:02d}": rng.normal(i, 1 + i / 4, n).round(4) for i in range(13)}
            part.update({f"n{i}": rng.integers(0, 10 ** (i + 2), n) for i in range(3)})
            part["city"] = rng.choice(cities, n)
            part["plan"] = rng.choice(plans, n, p=[0.4, 0.3, 0.2, 0.08, 0.02])
            part["member"] = rng.choice(["yes", "no"], n)
            score = part["f00"] + 0.5 * part["f01"] - 0.2 * part["f02"] + (part["plan"] == "pro")
            part["label"] = np.select([score < 0.0, score < 1.5], ["low", "mid"], "high")
            frame = pd.DataFrame(part)
            for name in ("f03", "f07", "city"):
                frame.loc[rng.random(n) < 0.01, name] = None
            bad = frame["f05"].astype(object)
            bad[rng.random(n) < 0.001] = "?"
            frame["f05"] = bad
            repeats = frame.sample(frac=0.005, random_state=int(rng.integers(2**31)))
            frame = pd.concat([frame, repeats]).head(n)
            frame.to_csv(fh, index=False, header=start == 0)


def measure(argv: list[str], cwd: Path) -> tuple[float, int, int]:
    """Wall seconds, peak resident bytes and exit code of ``argv`` run as its own process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.stderr.write(proc.stderr.read().decode() if proc.stderr else "")
    return seconds, usage.ru_maxrss * 1024, proc.returncode


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="a folder to keep (and reuse) the CSV and outputs in")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="seekforge-large-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"table_{args.rows}.csv"
    if not csv.exists():
        started = time.perf_counter()
        make_csv(csv, args.rows)
        print(f"made {csv} in {time.perf_counter() - started:.0f} s")
    size = csv.stat().st_size
    (work / "dq.yaml").write_text(CLEAN_CONFIG, encoding="utf-8")
    for old in ("cleaned",):
        if (work / old).exists():
            import shutil

            shutil.rmtree(work / old)
    cli = [sys.executable, "-m", "seekforge"]
    runs = {
        "pandas.read_csv alone": [sys.executable, "-c", f"import pandas; pandas.read_csv({str(csv)!r})"],
        "seekforge data profile": [*cli, "data", "profile", "-i", csv.name, "--label", "label", "-o", "p.html"],
        "seekforge data clean": [*cli, "data", "clean", "-i", csv.name, "-o", "cleaned", "-c", "dq.yaml"],
    }
    print(f"{args.rows:,} rows x 20 columns, {size / 2**20:.1f} MiB CSV; {os.cpu_count()} CPUs")
    print(f"{'step':<26}{'seconds':>9}{'peak MiB':>10}{'peak / file':>13}")
    failed = False
    for name, argv in runs.items():
        seconds, peak, code = measure(argv, work)
        failed |= code != 0
        note = "" if code == 0 else f"  (exit {code})"
        print(f"{name:<26}{seconds:>9.1f}{peak / 2**20:>10.0f}{peak / size:>12.2f}x{note}")
    print("target: peak / file below 4x for profile and clean")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
