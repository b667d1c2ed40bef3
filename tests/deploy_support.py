"""Helpers for the tests of the deployment artefacts in deploy/ (not a test module).

Why: the validators (check-jsonschema, hadolint, helm, kubernetes-validate, systemd-analyze)
are run through scripts/validate_deploy.sh, exactly as an operator or CI runs them, and the
tests need one rule for a missing tool: on Linux x86_64 in CI it is a failure (the dev extras
install every tool there), anywhere else a skip that names the tool.

Invariants: nothing here touches the network; every subprocess has a timeout.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SCRIPT = REPO / "scripts" / "validate_deploy.sh"
CHART = DEPLOY / "helm" / "crm-enlace"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "systemd" / "enlace.service"
BOOTSTRAP = DEPLOY / "compose" / "bootstrap.py"
PG_INIT = DEPLOY / "compose" / "postgres-init" / "10-enlace-databases.sh"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"

TOOL_UNAVAILABLE = 3
NODE_UID = 10001
GRPC_PORT = 7001


def tools_expected_here() -> bool:
    """The platform for which the dev extras install every validator."""
    return sys.platform == "linux" and platform.machine() == "x86_64"


def validate(
    part: str, *args: Path | str, in_ci: bool, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one part of scripts/validate_deploy.sh; skip or fail when its tool is missing."""
    result = subprocess.run(
        ["bash", str(SCRIPT), part, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if result.returncode == TOOL_UNAVAILABLE:
        reason = result.stderr.strip().splitlines()[-1]
        if in_ci and tools_expected_here():
            pytest.fail(f"{reason} (CI on Linux x86_64 must have it: see docs/deployment.md)")
        pytest.skip(reason)
    return result


def render(in_ci: bool, chart: Path = CHART, values: Path | None = None) -> list[dict[str, Any]]:
    """The manifests `helm template` renders, parsed."""
    args: list[Path | str] = [chart, values] if values else [chart]
    result = validate("render", *args, in_ci=in_ci)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one manifest of ``kind``; fails when there is none or several."""
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker's ignore rules exclude ``path`` (last matching pattern wins)."""
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if _ignore_regex(pattern).fullmatch(path) or any(
            _ignore_regex(pattern).fullmatch(parent) for parent in _parents(path)
        ):
            excluded = not negate
    return excluded


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def read_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def probe_command_in_dockerfile() -> list[str]:
    """The HEALTHCHECK's exec-form command."""
    for keyword, args in dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "HEALTHCHECK":
            _, _, command = args.partition(" CMD ")
            return list(yaml.safe_load(command))
    raise AssertionError("deploy/Dockerfile has no HEALTHCHECK")
