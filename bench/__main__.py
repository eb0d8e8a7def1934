"""``python -m bench`` (``make bench``): run every benchmark and write bench/results.md.

Each benchmark is a module ``bench/<name>.py`` runnable as ``python -m bench.<name>``; it prints
its figures and writes them, each beside its baseline measured in the same run, to
``bench/results/<name>.md``. This runner runs them one after another (timings on a shared
machine are noisy enough without running them together) and joins their results.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT_S", "900"))


def discover() -> list[str]:
    """Benchmark module names, in a stable order."""
    only = [name for name in sys.argv[1:] if not name.startswith("-")]
    names = sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))
    return [name for name in names if not only or name in only]


def main() -> int:
    """Run the benchmarks and write bench/results.md; non-zero if any failed."""
    RESULTS.mkdir(exist_ok=True)
    outcomes: list[tuple[str, str, float]] = []
    for name in discover():
        print(f"== bench.{name}", flush=True)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", f"bench.{name}"], timeout=TIMEOUT_S, check=False
            )
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {TIMEOUT_S:.0f}s"
        outcomes.append((name, status, time.monotonic() - started))
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}). Every figure stands beside "
        "a baseline measured in the same run; compare ratios, not absolute times, across machines.",
        "",
        "| benchmark | status | wall time |",
        "| --- | --- | --- |",
        *[f"| {name} | {status} | {seconds:.0f} s |" for name, status, seconds in outcomes],
        "",
    ]
    for name, _, _ in outcomes:
        part = RESULTS / f"{name}.md"
        if part.is_file():
            lines += [part.read_text().rstrip(), ""]
    (HERE / "results.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'results.md'}")
    return 0 if all(status == "ok" for _, status, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
