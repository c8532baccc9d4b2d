"""The live loop: read a source, push into the engine, show predictions (dashboard or JSON)."""
from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .engine import Engine, Prediction


@dataclass
class ListenStats:
    started: float = field(default_factory=time.monotonic)
    audio_seconds: float = 0.0
    predictions: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=2000))
    history: deque = field(default_factory=lambda: deque(maxlen=8))
    last: Prediction | None = None
    level_db: float = float("-inf")
    resyncs: int = 0  # restarts on the window grid after lost audio (overflow, overrun)

    def summary(self, source) -> dict:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        return {"duration_s": round(time.monotonic() - self.started, 2),
                "audio_s": round(self.audio_seconds, 2), "predictions": self.predictions,
                "overruns": source.overruns, "input_overflows": source.input_overflows,
                "lost_s": round(source.lost_samples / source.rate, 3),
                "resyncs": self.resyncs,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
                "latency_ms_p99": round(float(np.percentile(lat, 99)), 3)}


def run(engine: Engine, source, emit_json: bool = False, stream_id: str = "live",
        max_seconds: float | None = None, out=None, monitor=None) -> dict:
    """Read ``source`` until it ends (or Ctrl-C / ``max_seconds``); returns the summary."""
    out = out or sys.stdout
    stats = ListenStats()
    dashboard = None if emit_json else _Dashboard(engine, stats, source, monitor)
    source.start()
    expected = 0  # the stream index the next read should start at
    try:
        if dashboard:
            dashboard.__enter__()
        while max_seconds is None or time.monotonic() - stats.started < max_seconds:
            chunk = source.read(timeout=0.05)
            if chunk is None:
                _handle(engine.flush(stream_id), stats, emit_json, out, dashboard, monitor)
                break
            if chunk.size == 0:
                continue
            index = source.last_index
            if index != expected:  # audio was lost: rejoin the window grid after the gap, so
                # the clock stays right and no window splices the two sides (drift history kept)
                engine.restart(stream_id, source.rate, index)
                stats.resyncs += 1
            expected = index + chunk.size
            stats.audio_seconds += chunk.size / source.rate
            peak = float(np.max(np.abs(chunk)))
            stats.level_db = 20 * np.log10(peak) if peak > 0 else -120.0
            preds = engine.push(stream_id, chunk, source.rate)
            _handle(preds, stats, emit_json, out, dashboard, monitor)
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
        if dashboard:
            dashboard.__exit__(None, None, None)
    return stats.summary(source)


def _handle(preds, stats, emit_json, out, dashboard, monitor):
    for p in preds:
        stats.predictions += 1
        stats.latencies.append(p.latency_ms)
        stats.last = p
        stats.history.append(p)
        if monitor is not None:
            monitor.submit(p)
        if emit_json:
            d = p.to_json()
            if monitor is not None:
                d["drift"] = monitor.status_dict()
            out.write(json.dumps(d) + "\n")
            out.flush()
    if dashboard and preds:
        dashboard.refresh()


class _Dashboard:
    """rich Live view: top-k bars, smoothed winner, level meter, history, counters, drift."""

    def __init__(self, engine, stats, source, monitor):
        from rich.live import Live

        self.engine, self.stats, self.source, self.monitor = engine, stats, source, monitor
        self.live = Live(self._render(), refresh_per_second=8, transient=False)

    def __enter__(self):
        self.live.__enter__()

    def __exit__(self, *exc):
        self.live.__exit__(*exc)
        if not self.live.console.is_terminal:  # rich ends its last render with a newline on
            self.live.console.line()  # a terminal only; a log or pipe got the next line glued

    def refresh(self):
        self.live.update(self._render())

    def _render(self):
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        s, p = self.stats, self.stats.last
        table = Table.grid(padding=(0, 1))
        if p is not None and p.probs:
            for label, prob in sorted(p.probs.items(), key=lambda kv: -kv[1])[:5]:
                bar = "█" * int(prob * 30)
                table.add_row(f"{label:>14}", f"[green]{bar:<30}[/]", f"{prob:5.2f}")
        art = self.engine.art
        unit = f" {art.target_unit}" if art.target_unit else ""
        if art.is_classifier:
            winner = Text(f"{p.label}  ({p.probability:.2f})" if p else "…", style="bold cyan")
            title = "prediction (smoothed winner)"
        else:  # regression: the smoothed value, in the target's unit
            name = art.target_name or "value"
            winner = Text(f"{name} {p.value:.4g}{unit}" if p else "…", style="bold cyan")
            title = "prediction (smoothed value)"
        level = max(-60.0, min(0.0, s.level_db))
        meter = f"[yellow]{'▮' * int((level + 60) / 2):<30}[/] {s.level_db:6.1f} dBFS"
        lat = np.array(s.latencies) if s.latencies else np.zeros(1)
        lost = self.source.lost_samples / self.source.rate
        counters = (f"windows {s.predictions}   overruns {self.source.overruns}   "
                    f"input overflows {self.source.input_overflows}"
                    + (f" ({lost:.2f} s lost, {s.resyncs} resyncs)" if s.resyncs else "")
                    + f"   latency p50 {np.percentile(lat, 50):.2f} ms  "
                    f"p99 {np.percentile(lat, 99):.2f} ms")
        history = "  ".join(f"{h.start:6.2f}s {h.label or f'{h.value:.4g}{unit}'}"
                            for h in list(s.history)[-6:])
        parts = [Panel(Group(winner, table) if table.row_count else winner, title=title),
                 Panel(meter, title="input level"), Panel(history or "…", title="recent"),
                 Panel(counters, title="counters")]
        if self.monitor is not None:
            parts.append(Panel(self.monitor.status_text(), title="drift"))
        return Group(*parts)
