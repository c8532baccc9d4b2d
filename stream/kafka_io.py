"""Kafka clients (kafka-python) configured from CLI options / AUDIOCLF_* environment variables."""
from __future__ import annotations

import os


class KafkaSetupError(RuntimeError):
    """Cannot reach or configure Kafka; one line for the user."""


ENV = "AUDIOCLF_"
SECURITY_OPTIONS = {  # CLI dest -> kafka-python keyword
    "security_protocol": "security_protocol", "sasl_mechanism": "sasl_mechanism",
    "sasl_username": "sasl_plain_username", "sasl_password": "sasl_plain_password",
    "ssl_cafile": "ssl_cafile", "ssl_certfile": "ssl_certfile", "ssl_keyfile": "ssl_keyfile",
}


def env(name: str, default=None):
    return os.environ.get(ENV + name.upper(), default)


def env_flag(name: str) -> bool:
    """An on/off ``AUDIOCLF_*`` variable: 1/true/yes/on or 0/false/no/off (or unset)."""
    value = env(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise KafkaSetupError(f"{ENV}{name.upper()}={env(name)!r}: need 1/true/yes/on or "
                          "0/false/no/off")


def add_connection_args(parser) -> None:
    parser.add_argument("--bootstrap", default=env("bootstrap"),
                        help="HOST:PORT[,HOST:PORT] (env AUDIOCLF_BOOTSTRAP)")
    for dest in SECURITY_OPTIONS:
        flag = "--" + dest.replace("_", "-")
        parser.add_argument(flag, dest=dest, default=env(dest),
                            help=f"(env AUDIOCLF_{dest.upper()})")


def client_options(args) -> dict:
    if not args.bootstrap:
        raise KafkaSetupError("no Kafka bootstrap server: give --bootstrap HOST:PORT or set "
                              "AUDIOCLF_BOOTSTRAP")
    opts = {"bootstrap_servers": args.bootstrap.split(",")}
    for dest, kw in SECURITY_OPTIONS.items():
        value = getattr(args, dest, None)
        if value:
            opts[kw] = value
    return opts


def make_producer(opts: dict):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(acks="all", linger_ms=5, batch_size=262_144, retries=10,
                             max_in_flight_requests_per_connection=1, **opts)
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot connect to Kafka at {opts['bootstrap_servers']}: {exc}"
                              ) from None


def make_consumer(opts: dict, group: str, listener_topics=None):
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=6000,
                             heartbeat_interval_ms=1000, max_poll_records=2000,
                             receive_message_max_bytes=100_000_000, **opts)
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot connect to Kafka at {opts['bootstrap_servers']}: {exc}"
                              ) from None
