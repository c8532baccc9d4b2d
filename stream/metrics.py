"""A Prometheus text-format ``/metrics`` endpoint (standard library HTTP server, own thread)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_STATE_VALUE = {"OK": 0, "WARN": 1, "DRIFT": 2}


def render(engine=None, monitors=(), consume=None) -> str:
    lines = []

    def metric(name, kind, help_text, value, labels=""):
        lines.append(f"# HELP audioclf_{name} {help_text}")
        lines.append(f"# TYPE audioclf_{name} {kind}")
        lines.append(f"audioclf_{name}{labels} {value}")

    if engine is not None:
        metric("windows_scored_total", "counter", "Windows scored.", engine.windows_scored)
        metric("streams", "gauge", "Streams with live state.", len(engine.streams))
    if consume is not None:
        s = consume.stats
        metric("messages_total", "counter", "Audio messages consumed.", s.messages)
        metric("dlq_total", "counter", "Messages sent to the dead-letter topic.", s.dlq)
        metric("sequence_gaps_total", "counter", "Missing sequence numbers.", s.seq_gaps)
        metric("rewinds_total", "counter", "Rewinds to committed offsets.", s.rewinds)
        metric("rate_changes_total", "counter", "Streams restarted at another sample rate.",
               s.rate_changes)
        metric("resyncs_total", "counter", "Streams restarted at a jump of their sample index.",
               s.resyncs)
        metric("partition_moves_total", "counter",
               "Streams restarted on arriving from another partition or topic.", s.partition_moves)
        status = consume.last_status  # taken every --status-every seconds
        if status.get("lag") is not None:
            metric("consumer_lag", "gauge", "Messages behind the end of the assigned partitions "
                   "(as of the last status).", status["lag"])
        if "state_bytes" in status:
            metric("state_bytes", "gauge", "Memory held for streams (as of the last status).",
                   status["state_bytes"])
    for m in monitors:
        if m is None:
            continue
        metric("drift_state", "gauge", "0 OK, 1 WARN, 2 DRIFT.", _STATE_VALUE[m.state()])
        metric("drift_score", "gauge", "Share of drifted features.", m.last.get("score", 0.0))
        metric("drift_dropped_total", "counter", "Windows the monitor dropped.", m.dropped)
        metric("drift_evaluations_total", "counter",
               f"Drift evaluations (0: no stream has had its first {m.min_windows} windows).",
               m.evaluations)
        if m.capture is not None:
            metric("captured_total", "counter", "Windows saved for retraining.", m.capture.saved)
    return "\n".join(lines) + "\n"


class MetricsPortError(RuntimeError):
    """The /metrics port cannot be opened (in use, not allowed); one line for the user."""


def serve_metrics(port: int, **sources):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 -- http.server's naming
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render(**sources).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    try:
        server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    except OSError as exc:
        raise MetricsPortError(f"cannot serve /metrics on port {port}: "
                               f"{exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
