"""What training shows on a terminal (rich, on stderr) while it works; nothing when piped."""
from __future__ import annotations

import sys


class status_line:
    """A rich spinner with ``text`` on a terminal (stderr) while a step without a count runs,
    nothing otherwise."""

    def __init__(self, enabled: bool, text: str):
        self.enabled = enabled and sys.stderr.isatty()
        self.text = text

    def __enter__(self):
        if self.enabled:
            from rich.console import Console

            self.status = Console(stderr=True).status(self.text)
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.status.__exit__(*exc)
        return False


class progress_bar:
    """A rich progress bar of ``total`` steps, labelled ``label``, on a terminal (stderr),
    nothing otherwise; yields ``advance(n)``."""

    def __init__(self, enabled: bool, total: int, label: str = "features"):
        self.enabled = enabled and sys.stderr.isatty()
        self.total = total
        self.label = label

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
        from rich.console import Console

        self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("files", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False
