"""docker-compose.yml can't run here (no Docker engine); check its structure instead."""
import shlex
from pathlib import Path

import pytest

from audioclf.cli import build_parser

yaml = pytest.importorskip("yaml")
REPO = Path(__file__).resolve().parents[1]


def test_compose_services_images_env_and_commands(monkeypatch):
    spec = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"kafka", "consume", "demo-producer"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    consume = services["consume"]
    assert consume["build"] == "." and (REPO / "Dockerfile").exists()
    env = consume["environment"]
    assert env["AUDIOCLF_BOOTSTRAP"].startswith("kafka:")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    parser = build_parser()  # reads AUDIOCLF_* defaults now
    # the service's command parses with the real CLI, its env filling the required options
    args = parser.parse_args(consume["command"])
    assert args.command == "consume"
    assert args.topic == ["audio"] and args.out_topic == "predictions"
    assert args.bootstrap == "kafka:9092" and args.metrics_port == 9108
    producer_cmd = services["demo-producer"]["command"][0]
    produce_part = producer_cmd.split("do ", 1)[1].split(";", 1)[0]
    words = shlex.split(produce_part)
    assert words[0] == "audioclf"
    assert parser.parse_args(words[1:] ).command == "produce"
    dockerfile = (REPO / "Dockerfile").read_text()
    for pkg in ("audioclf", "features", "train", "stream", "models"):
        assert f"COPY {pkg} {pkg}" in dockerfile
