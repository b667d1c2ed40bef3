"""The deployment artefacts pass their offline validators, and the validators catch mistakes.

Why both: a validator that is never seen failing proves nothing, so each one also meets a
copy of the artefact with one realistic mistake. The structural tests check what no schema
knows: references inside the compose file, the Docker build context, and that the
Dockerfile, the compose file and the chart agree on the user, the port and the probe.

No Docker engine, cluster or running systemd is needed (none exists on CI's machine).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    CHART,
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    ENTRYPOINT,
    GRPC_PORT,
    NODE_UID,
    REPO,
    UNIT,
    by_kind,
    dockerfile_instructions,
    dockerignore_excludes,
    probe_command_in_dockerfile,
    read_patterns,
    render,
    validate,
)

from node.config import load_config

NODE_SERVICES = ("pan", "cri", "hnd", "crm")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


# --- compose ---------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(in_ci: bool) -> None:
    result = validate("compose", in_ci=in_ci)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_misspelt_key_in_a_merged_anchor(
    tmp_path: Path, in_ci: bool
) -> None:
    broken = tmp_path / "compose.yaml"
    text = COMPOSE.read_text(encoding="utf-8")
    assert "  read_only: true\n" in text
    broken.write_text(text.replace("  read_only: true\n", "  read_onyl: true\n", 1))
    result = validate("compose", broken, in_ci=in_ci)
    assert result.returncode == 1
    assert "read_onyl" in result.stdout + result.stderr


def test_compose_references_resolve_and_nodes_are_hardened() -> None:
    data = compose()
    services, secrets = data["services"], data["secrets"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for secret in service.get("secrets", []):
            assert secret in secrets, f"{name} uses undeclared secret {secret}"
        for network in service.get("networks", []):
            assert network in data["networks"], f"{name} joins unknown network {network}"
    for secret in secrets.values():
        assert secret["file"].startswith("./secrets/"), "secrets live in the ignored ./secrets"
    ignored = read_patterns(DEPLOY / "compose" / ".gitignore")
    assert "secrets/" in ignored and ".env" in ignored
    assert data["networks"]["database"]["internal"] is True

    bootstrap = services["bootstrap"]
    assert bootstrap["network_mode"] == "none"
    countries = bootstrap["command"][bootstrap["command"].index("--countries") + 1]
    assert [c.lower() for c in countries.split(",")] + ["crm"] == list(NODE_SERVICES)
    assert services["postgres"]["environment"]["ENLACE_NODES"].split() == list(NODE_SERVICES)
    for name in NODE_SERVICES:
        node = services[name]
        assert node["image"] == bootstrap["image"]
        assert node["user"] == f"{NODE_UID}:{NODE_UID}"
        assert node["read_only"] is True and node["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in node["security_opt"]
        assert node["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
        (volume,) = node["volumes"]
        assert volume["source"] == "federation" and volume["volume"]["subpath"] == name
        env = node["environment"]
        assert env["ENLACE_LISTEN"] == f"0.0.0.0:{GRPC_PORT}"
        # The URL names the node's own role and database and carries no password.
        assert env["ENLACE_DATABASE_URL"] == (
            f"postgresql+psycopg://enlace_{name}@postgres:5432/enlace_{name}"
        )
        assert env["ENLACE_DATABASE_PASSWORD_FILE"] == f"/run/secrets/db_{name}"
        assert node["secrets"] == [f"db_{name}"]
        assert node["healthcheck"]["test"] == ["CMD", *probe_command_in_dockerfile()]


def test_no_key_or_password_is_committed_under_deploy() -> None:
    assignment = re.compile(r"^\s*-?\s*([A-Z_]*PASSWORD[A-Z_]*)\s*[:=]\s*(.+)")
    for path in DEPLOY.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        assert "PRIVATE KEY-----" not in text, path
        for line in text.splitlines():
            match = assignment.match(line)
            if match and not match.group(1).endswith("_FILE"):
                # Only values read from a file at run time, never literals.
                assert match.group(2).startswith("$(cat "), f"{path}: {line.strip()}"


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(in_ci: bool) -> None:
    result = validate("dockerfile", in_ci=in_ci)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_final_root_user(tmp_path: Path, in_ci: bool) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text(encoding="utf-8") + "USER root\n")
    result = validate("dockerfile", broken, in_ci=in_ci)
    assert result.returncode == 1
    assert "DL3002" in result.stdout


def test_dockerfile_runtime_stage_is_slim_and_unprivileged() -> None:
    steps = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    base = next(args for kw, args in steps if kw == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert base.split("=", 1)[1].startswith("python:3.11-slim")
    stages = [i for i, (kw, _) in enumerate(steps) if kw == "FROM"]
    assert len(stages) == 2, "a build stage and a runtime stage"
    names = {args.split(" AS ")[1] for kw, args in steps if kw == "FROM"}
    runtime = steps[stages[-1] :]
    users = [args for kw, args in runtime if kw == "USER"]
    assert users == [f"{NODE_UID}:{NODE_UID}"], "numeric, non-root, set once"
    for kw, args in runtime:
        if kw == "COPY" and args.startswith("--from="):
            assert args.split()[0].removeprefix("--from=") in names
        assert kw != "ADD", "COPY only: ADD can fetch URLs and unpack archives"
        if kw in ("ENTRYPOINT", "CMD"):
            assert args.startswith("["), f"{kw} must use the exec form (signals reach enlace)"
    assert ("EXPOSE", str(GRPC_PORT)) in runtime
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert probe_command_in_dockerfile()[:2] == ["enlace-entrypoint", "health"]
    assert f"ENLACE_LISTEN=0.0.0.0:{GRPC_PORT}" in dict(runtime)["ENV"].split()


def test_docker_build_context_holds_what_is_copied_and_nothing_secret() -> None:
    ignore = read_patterns(DEPLOY / "Dockerfile.dockerignore")
    for kw, args in dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if kw != "COPY" or args.startswith("--from="):
            continue
        for source in args.split()[:-1]:
            path = REPO / source
            assert path.exists(), f"COPY source {source} is missing"
            sample = next(path.rglob("*.py")) if path.is_dir() else path
            relative = sample.relative_to(REPO).as_posix()
            assert not dockerignore_excludes(ignore, relative), f"{relative} is ignored"
    for unwanted in (
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "demo-home/pan/keys/signing.key",
        "node/__pycache__/config.cpython-311.pyc",
        "node/home/keys/tls.key",
        "deploy/compose/secrets/pan.txt",
        "enlace.db",
    ):
        assert dockerignore_excludes(ignore, unwanted), f"{unwanted} would enter the image"
    assert ENTRYPOINT.stat().st_mode & 0o111, "the entrypoint must be executable"


# --- Helm chart ------------------------------------------------------------------------------


def test_chart_lints_renders_and_matches_the_kubernetes_schemas(in_ci: bool) -> None:
    result = validate("helm", in_ci=in_ci)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kubernetes-validate --strict -k 1.37.0" in result.stdout


def copy_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "crm-enlace"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("ci"))
    return chart


def test_kubernetes_schemas_reject_a_misspelt_field(tmp_path: Path, in_ci: bool) -> None:
    chart = copy_chart(tmp_path)
    deployment = chart / "templates" / "deployment.yaml"
    text = deployment.read_text(encoding="utf-8")
    deployment.write_text(text.replace("  revisionHistoryLimit: 3", "  revisionHistoryLimt: 3"))
    result = validate("helm", chart, in_ci=in_ci, env={"ENLACE_KUBE_VERSIONS": "1.37.0"})
    assert result.returncode == 1
    assert "revisionHistoryLimt" in result.stdout + result.stderr


def test_values_schema_rejects_what_the_node_would_refuse(tmp_path: Path, in_ci: bool) -> None:
    chart = copy_chart(tmp_path)
    (chart / "ci").mkdir()
    (chart / "ci" / "bad-values.yaml").write_text("node:\n  country: PANA\n")
    result = validate("helm", chart, in_ci=in_ci, env={"ENLACE_KUBE_VERSIONS": "1.37.0"})
    assert result.returncode == 1
    assert "/node/country" in result.stdout + result.stderr


@pytest.mark.parametrize("values", [None, CHART / "ci" / "all-options-values.yaml"])
def test_rendered_node_toml_is_accepted_by_the_node(
    tmp_path: Path, in_ci: bool, values: Path | None
) -> None:
    manifests = render(in_ci, values=values)
    config_map = by_kind(manifests, "ConfigMap")
    (tmp_path / "node.toml").write_text(config_map["data"]["node.toml"], encoding="utf-8")
    config = load_config(tmp_path, environ={})
    chosen = yaml.safe_load((values or CHART / "values.yaml").read_text(encoding="utf-8"))
    assert config.country == chosen["node"]["country"].upper()
    assert config.endpoint == chosen["node"]["endpoint"]
    assert config.roles == tuple(chosen["node"]["roles"])
    assert config.listen == f"0.0.0.0:{chosen['node'].get('port', GRPC_PORT)}"
    assert config.database_url == "", "the database URL comes from a Secret, not the ConfigMap"


def test_rendered_pod_is_hardened_and_keys_stay_in_the_init_container(in_ci: bool) -> None:
    manifests = render(in_ci)
    spec = by_kind(manifests, "Deployment")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == NODE_UID
    (init,) = pod["initContainers"]
    (node,) = pod["containers"]
    for container in (init, node):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
    assert "keys" in {m["name"] for m in init["volumeMounts"]}
    assert "keys" not in {m["name"] for m in node["volumeMounts"]}
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["secretName"] == "enlace-test-crm-enlace-keys"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert node[probe]["exec"]["command"] == probe_command_in_dockerfile()
    env = {e["name"]: e.get("value") for e in node["env"]}
    assert env["ENLACE_LISTEN"] == f"0.0.0.0:{GRPC_PORT}"
    assert "ENLACE_METRICS_LISTEN" not in env and "ENLACE_DATABASE_URL" not in env
    assert [p["name"] for p in node["ports"]] == ["grpc"]
    policy = by_kind(manifests, "NetworkPolicy")["spec"]
    assert policy["ingress"] == [{"ports": [{"port": "grpc", "protocol": "TCP"}]}]


def test_rendered_options_expose_metrics_to_monitoring_only(in_ci: bool) -> None:
    manifests = render(in_ci, values=CHART / "ci" / "all-options-values.yaml")
    deployment = by_kind(manifests, "Deployment")["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"]["type"] == "RollingUpdate"
    (node,) = deployment["template"]["spec"]["containers"]
    env = {e["name"]: e for e in node["env"]}
    assert env["ENLACE_METRICS_LISTEN"]["value"] == "0.0.0.0:9464"
    assert env["ENLACE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "crm-database"
    service_ports = by_kind(manifests, "Service")["spec"]["ports"]
    assert [p["name"] for p in service_ports] == ["grpc"], "metrics never on the Service"
    rules = by_kind(manifests, "NetworkPolicy")["spec"]["ingress"]
    metrics_rule = next(r for r in rules if r["ports"][0]["port"] == "metrics")
    assert metrics_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert by_kind(manifests, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("replicaCount: 2\n", "needs PostgreSQL"),
        (
            "replicaCount: 2\ndatabase:\n  existingSecret: db\n",
            "needs a ReadWriteMany home volume",
        ),
        ("metrics:\n  enabled: true\n  port: 7001\n", "must differ from node.port"),
    ],
)
def test_chart_refuses_replicas_or_ports_the_node_cannot_run_with(
    tmp_path: Path, in_ci: bool, values: str, message: str
) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(values)
    result = validate("render", CHART, file, in_ci=in_ci)
    assert result.returncode == 1
    assert message in result.stderr


# --- systemd ---------------------------------------------------------------------------------


def test_systemd_unit_verifies_and_is_confined(in_ci: bool) -> None:
    result = validate("systemd", in_ci=in_ci)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Overall exposure level for enlace.service" in result.stdout


def test_systemd_verify_rejects_an_unknown_setting(tmp_path: Path, in_ci: bool) -> None:
    broken = tmp_path / "enlace.service"
    text = UNIT.read_text(encoding="utf-8")
    broken.write_text(text.replace("ProtectSystem=strict", "ProtectSytem=strict"))
    result = validate("systemd", broken, in_ci=in_ci)
    assert result.returncode == 1
    assert "ProtectSytem" in result.stderr


def test_systemd_exposure_threshold_rejects_an_unconfined_unit(tmp_path: Path, in_ci: bool) -> None:
    kept = {"Description", "Type", "User", "Group", "ExecStart", "WantedBy"}
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    bare = [line for line in lines if line.startswith("[") or line.split("=")[0] in kept]
    assert len(bare) == 9, bare
    unit = tmp_path / "enlace.service"
    unit.write_text("\n".join(bare) + "\n")
    result = validate("systemd", unit, in_ci=in_ci)
    assert result.returncode == 1
    assert "exposure above" in result.stderr
