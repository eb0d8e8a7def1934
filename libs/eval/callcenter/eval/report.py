"""The eval's output: a table per scenario and per category, the pass rate, failing transcripts."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callcenter.eval.runner import RunResult


@dataclass(slots=True)
class Summary:
    """The scores of a whole eval."""

    runs: int
    passed_runs: int
    scenarios: int
    passed_all: int  # scenarios that passed every repeat (pass^k)
    skipped: int

    @property
    def pass_rate(self) -> float:
        """Passed runs over runs (skipped ones left out)."""
        return self.passed_runs / self.runs if self.runs else 0.0

    @property
    def pass_hat_k(self) -> float:
        """Scenarios that passed every one of their runs, over scenarios."""
        return self.passed_all / self.scenarios if self.scenarios else 0.0


def _by_scenario(results: list[RunResult]) -> dict[str, list[RunResult]]:
    grouped: dict[str, list[RunResult]] = defaultdict(list)
    for result in results:
        grouped[result.scenario.id].append(result)
    return grouped


def summarize(results: list[RunResult]) -> Summary:
    """Pass rate over runs and pass^k over scenarios; skipped runs count in neither."""
    ran = [r for r in results if r.skipped is None]
    grouped = _by_scenario(ran)
    return Summary(
        runs=len(ran),
        passed_runs=sum(r.passed for r in ran),
        scenarios=len(grouped),
        passed_all=sum(all(r.passed for r in runs) for runs in grouped.values()),
        skipped=len({r.scenario.id for r in results if r.skipped is not None}),
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def render(results: list[RunResult], *, engine: str, repeat: int) -> str:
    """The printed report."""
    grouped = _by_scenario(results)
    rows = [("scenario", "category", "channel", "passed", "tags")]
    categories: dict[str, list[RunResult]] = defaultdict(list)
    for scenario_id, runs in grouped.items():
        scenario = runs[0].scenario
        if runs[0].skipped:
            outcome = "skipped"
        else:
            outcome = f"{sum(r.passed for r in runs)}/{len(runs)}"
            categories[scenario.category].extend(runs)
        rows.append(
            (scenario_id, scenario.category, scenario.channel, outcome, ",".join(scenario.tags))
        )
    out = [_table(rows), ""]
    cat_rows = [("category", "runs", "passed", "rate")]
    for category, runs in sorted(categories.items()):
        passed = sum(r.passed for r in runs)
        cat_rows.append((category, str(len(runs)), str(passed), f"{passed / len(runs):.0%}"))
    out += [_table(cat_rows), ""]
    failing = [r for r in results if not r.passed and r.skipped is None]
    if failing:
        out.append("Failing transcripts:")
    for result in failing:
        out.append(
            f"\n== {result.scenario.id} (run {result.attempt}, conversation {result.call_id})"
        )
        for said, answered in result.transcript:
            out += [f"  customer> {said}", f"  assistant> {answered}"]
        out += [f"  ! {problem}" for problem in result.problems]
    for result in results:
        if result.skipped and result.attempt == 1:
            out.append(f"skipped {result.scenario.id}: {result.skipped}")
    summary = summarize(results)
    out.append(
        f"\nengine {engine}: {summary.passed_runs}/{summary.runs} runs passed "
        f"({summary.pass_rate:.1%}); pass^{repeat} {summary.passed_all}/{summary.scenarios} "
        f"({summary.pass_hat_k:.1%}); {summary.skipped} skipped"
    )
    return "\n".join(out)


def write_results(path: Path, results: list[RunResult], *, engine: str, repeat: int) -> None:
    """Every run as JSON: scenario, outcome, problems and transcript."""
    summary = summarize(results)
    data: dict[str, Any] = {
        "engine": engine,
        "repeat": repeat,
        "pass_rate": summary.pass_rate,
        "pass_hat_k": summary.pass_hat_k,
        "runs": [
            {
                "scenario": r.scenario.id,
                "category": r.scenario.category,
                "channel": r.scenario.channel,
                "tags": r.scenario.tags,
                "attempt": r.attempt,
                "passed": r.passed,
                "skipped": r.skipped,
                "call_id": r.call_id,
                "problems": r.problems,
                "transcript": [{"customer": s, "assistant": a} for s, a in r.transcript],
            }
            for r in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
