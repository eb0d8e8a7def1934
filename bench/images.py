"""Image sizes: each Callcenter image beside the base it is built on, and what weighs most in it.

    python -m bench.images            # builds the images first when they are missing

Needs a Docker engine. The images are the ones docker-compose.yml names (callcenter-*:local), as
scripts/build-images.sh builds them; the baseline is the Python base image of the same build
(scripts/build-base-images.sh), so "added" is what our dependencies and code cost. Writes
bench/results/images.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
IMAGES = {
    "callcenter-gateway:local": "gateway",
    "callcenter-voice-pipeline:local": "voice_pipeline",
    "callcenter-conversation:local": "conversation",
    "callcenter-tools:local": "tools",
    "callcenter-post-call:local": "post_call",
    "callcenter-ops:local": "ops",
}
#: What the voice image carries through pipecat-ai's core dependencies (no extra leaves them out).
WATCHED = ("numba", "llvmlite", "onnxruntime", "numpy", "scipy", "pipecat", "litellm")
# one du per argument: a single du counts each file once, so a later argument inside the venv
# would show 0
SITE_SIZES = "du -sk /app/.venv && cd /app/.venv/lib/python3*/site-packages && du -sk * | sort -rn | head -40"


def docker() -> str:
    """Debian's BuildKit-capable CLI when installed, else whatever `docker` is."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").is_file() else shutil.which("docker") or ""


def out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=1800).stdout


def has_image(ref: str) -> bool:
    inspect = subprocess.run([docker(), "image", "inspect", ref], capture_output=True, check=False)
    return inspect.returncode == 0


def size_mb(ref: str) -> float:
    return int(out(docker(), "image", "inspect", "-f", "{{.Size}}", ref)) / 1e6


def site_packages_mb(ref: str) -> dict[str, float]:
    """Kilobytes on disk per top-level entry of the image's site-packages (and the venv total)."""
    text = out(docker(), "run", "--rm", "--entrypoint", "sh", ref, "-c", SITE_SIZES)
    sizes = {}
    for line in text.splitlines():
        kb, _, name = line.partition("\t")
        sizes[name.strip()] = int(kb) / 1000
    return sizes


def main() -> int:
    if not docker():
        print("no docker command: install docker.io (see README, 'Containers')", file=sys.stderr)
        return 1
    missing = [ref for ref in IMAGES if not has_image(ref)]
    if missing:
        print(f"building {', '.join(missing)}", flush=True)
        subprocess.run(
            ["bash", str(ROOT / "scripts/build-images.sh")],
            check=True,
            env={**os.environ, "DOCKER": docker()},
        )
    bases = dict(
        line.split("=", 1)
        for line in out(
            "env", f"DOCKER={docker()}", "bash", str(ROOT / "scripts/build-base-images.sh")
        ).split()
    )
    base = size_mb(bases["PYTHON_IMAGE"])
    rows = []
    figures: dict[str, object] = {"base": bases["PYTHON_IMAGE"], "base_mb": round(base, 1)}
    for ref, name in IMAGES.items():
        total = size_mb(ref)
        packages = site_packages_mb(ref)
        venv = packages.pop("/app/.venv", 0.0)
        packages.pop(".", None)
        watched = {
            key: round(sum(mb for entry, mb in packages.items() if entry.split("-")[0] == key), 1)
            for key in WATCHED
        }
        heaviest = sorted(
            ((entry, mb) for entry, mb in packages.items() if not entry.endswith("-info")),
            key=lambda item: -item[1],
        )[:4]
        figures[name] = {"image_mb": round(total, 1), "venv_mb": round(venv, 1), **watched}
        rows.append(
            f"| {name} | {total:.0f} MB | {total - base:.0f} MB | {venv:.0f} MB | "
            + ", ".join(f"{entry} {mb:.0f}" for entry, mb in heaviest)
            + " |"
        )
        print(f"{name}: {total:.0f} MB (base {base:.0f} MB), venv {venv:.0f} MB", flush=True)
    voice = figures["voice_pipeline"]
    assert isinstance(voice, dict)
    jit = voice["numba"] + voice["llvmlite"]
    lines = [
        "## images",
        "",
        f"Baseline: the base image `{bases['PYTHON_IMAGE']}`, {base:.0f} MB (uncompressed, as "
        "`docker image inspect` reports). Sizes on disk; heaviest site-packages entries in MB.",
        "",
        "| image | size | added to base | virtualenv | heaviest in site-packages (MB) |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"numba + llvmlite in the voice image: {jit:.0f} MB. pipecat-ai lists numba among its core "
        "dependencies (not behind an extra) and resampy needs it too, so no choice of pipecat "
        "extras leaves it out; the voice pipeline resamples with soxr and never imports numba.",
        "",
        "```json",
        json.dumps(figures, indent=1),
        "```",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "images.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'images.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
