"""The Docker image and demo stack, checked without a Docker engine: the files parse, name
each other consistently (ports, the data source, the dashboard), and the image runs as a
non-root user with a health check. The dashboard's SQL runs in tests/it/observe.rs."""

import json
import pathlib

import yaml

DOCKER = pathlib.Path(__file__).resolve().parents[2] / "docker"


def test_compose_wires_cloudpg_grafana_and_metabase():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"cloudpg", "grafana", "metabase", "metabase-setup"}
    cloudpg = services["cloudpg"]
    assert cloudpg["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert "5433:5433" in cloudpg["ports"] and "9187:9187" in cloudpg["ports"]
    for name in ("grafana", "metabase"):
        assert services[name]["depends_on"]["cloudpg"]["condition"] == "service_healthy"
        assert ":" in services[name]["image"] and not services[name]["image"].endswith(":latest"), "images are pinned"
    for volume in services["grafana"]["volumes"] + services["metabase-setup"]["volumes"]:
        source = volume.split(":", 1)[0]
        assert (DOCKER / source).exists(), f"compose mounts {source}, which does not exist"


def test_grafana_provisioning_points_at_cloudpg():
    datasources = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/cloudpg.yaml").read_text())
    (ds,) = datasources["datasources"]
    assert ds["url"] == "cloudpg:5433" and ds["jsonData"]["database"] == "awscc"
    providers = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/cloudpg.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((DOCKER / "grafana/dashboards/cloudpg.json").read_text())
    assert dashboard["uid"] == "cloudpg" and len(dashboard["panels"]) >= 5
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == ds["uid"]
        assert all(t["rawSql"].strip() for t in panel["targets"])


def test_dockerfile_builds_small_runs_unprivileged_and_checks_health():
    text = (DOCKER / "Dockerfile").read_text()
    stages = [l for l in text.splitlines() if l.startswith("FROM ")]
    assert len(stages) == 2 and " AS build" in stages[0], "multi-stage: build, then a slim runtime"
    assert "slim" in stages[1]
    assert "USER 10001:10001" in text
    assert 'HEALTHCHECK' in text and "http://127.0.0.1:9187/healthz" in text
    assert "CLOUDPG_METRICS__LISTEN=0.0.0.0:9187" in text, "the health check's port is where metrics listen"
    assert 'CMD ["serve", "--emulator"]' in text, "docker run shows the demo"
    ignore = (DOCKER.parent / ".dockerignore").read_text().split()
    assert "target" in ignore and ".venv" in ignore
