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


def test_every_consume_option_has_an_environment_variable(monkeypatch):
    """The README promises an AUDIOCLF_* variable for every consume option (a service is
    configured by its environment); an on/off variable that means neither is one line."""
    import subprocess
    import sys

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    flags = [a for a in sub.choices["consume"]._actions if a.option_strings and a.dest != "help"]
    for action in flags:
        monkeypatch.delenv("AUDIOCLF_" + action.dest.upper(), raising=False)
    defaults = vars(build_parser().parse_args(["consume"]))
    for action in flags:  # "3" is valid for every one of them but a flag: a number, a name
        monkeypatch.setenv("AUDIOCLF_" + action.dest.upper(),
                           {"drift_thresholds": "psi_drift=0.5", "no_drift": "1"}.get(
                               action.dest, "3"))
    args = vars(build_parser().parse_args(["consume"]))
    for action in flags:
        assert args[action.dest] != defaults[action.dest], (
            f"--{action.dest}: AUDIOCLF_{action.dest.upper()} is not read")
    for value, want in (("off", False), ("yes", True)):
        monkeypatch.setenv("AUDIOCLF_NO_DRIFT", value)
        assert build_parser().parse_args(["consume"]).no_drift is want
    monkeypatch.setenv("AUDIOCLF_NO_DRIFT", "maybe")
    out = subprocess.run([sys.executable, "-m", "audioclf", "consume"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "AUDIOCLF_NO_DRIFT='maybe'" in out.stderr
