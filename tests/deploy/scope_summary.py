"""Say plainly, at the end of a run, what the deployment checks do not cover.

A plugin the root conftest.py loads (``pytest_plugins``), not this directory's conftest: with
``make test``'s two workers the summary is printed by the controller, which collects nothing and
so never loads a conftest below the root.
"""

from __future__ import annotations

import pytest

from tests.deploy.compose_checks import IMAGES_NOT_CHECKED
from tests.deploy.compose_checks import NOT_CHECKED as COMPOSE_NOT_CHECKED
from tests.deploy.helm_chart import NOT_CHECKED as CHART_NOT_CHECKED

_RAN: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "tests/deploy/" in report.nodeid.replace("\\", "/"):
        module = report.nodeid.split("::")[0].rsplit("/", 1)[-1]
        kinds = {"test_compose.py": "compose", "test_images.py": "images", "test_chart.py": "chart"}
        _RAN.add(kinds.get(module, "chart"))


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _RAN:
        return
    terminalreporter.section("deployment checks: scope")
    if "chart" in _RAN:
        terminalreporter.write_line(CHART_NOT_CHECKED)
    if "compose" in _RAN:
        terminalreporter.write_line(COMPOSE_NOT_CHECKED)
    if "images" in _RAN:
        terminalreporter.write_line(IMAGES_NOT_CHECKED)
