"""The deployment files are checked here, since no container runs in CI: the Dockerfile by hadolint,
the Kubernetes manifests against the API schemas (kubernetes-validate, strict), nginx's
configuration by ``nginx -t``, and the Compose file for what the docs promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from qa_service.tooling.replicas import nginx_binary
from tests.conftest import ROOT, skip_outside_ci

DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A linter from the test extra (installed beside this Python)."""
    path = BIN / name
    assert path.is_file(), f"{name} is missing: `make install` installs the test extra"
    return str(path)


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user_with_cpu_torch_and_a_health_check() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, flags=re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert not re.search(r"^RUN .*qa-service build", dockerfile, flags=re.MULTILINE)  # built by a one-shot job


def test_the_kubernetes_manifests_match_the_api_schemas() -> None:
    manifests = sorted(str(path) for path in (DEPLOY / "k8s").glob("*.yaml"))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", *manifests], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(manifests)


def test_the_deployment_probes_readiness_and_liveness() -> None:
    deployment = yaml.safe_load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_compose_file_wires_database_replicas_balancer_and_build() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "index-build", "replica-1", "replica-2", "nginx"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    nginx_address = services["nginx"]["networks"]["qa"]["ipv4_address"]
    for name in ("replica-1", "replica-2"):
        environment = services[name]["environment"]
        assert environment["QA_FORWARDED_ALLOW_IPS"] == nginx_address
        assert environment["QA_FEEDBACK_DB"].startswith("postgresql://")
        assert re.search(rf"server {name}:8000", (DEPLOY / "nginx.conf").read_text())


def test_the_nginx_configuration_is_valid(tmp_path: Path) -> None:
    binary = nginx_binary()
    if binary is None:
        skip_outside_ci(
            "nginx is not installed", "nginx is missing: CI checks its configuration (bash .ci/run installs it)"
        )
    config = (DEPLOY / "nginx.conf").read_text().replace("replica-1:8000", "127.0.0.1:8001")
    config = config.replace("replica-2:8000", "127.0.0.1:8002").replace("listen 80;", "listen 127.0.0.1:8080;")
    path = tmp_path / "nginx.conf"
    path.write_text(f"pid {tmp_path}/nginx.pid;\n" + config)
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
