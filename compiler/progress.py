"""Progress of long work on a terminal.

The CLI turns it on for `lbc compile` and `lbc verify`; code that may take long reports where it is
with `progress.report(phase, detail)` (a pass name; a layer). Nothing is shown for the first two
seconds, nor ever when stderr is not a terminal (pipes, CI logs, the Python API): then one status
line on stderr is rewritten in place at most ten times a second, and erased when the work ends.
"""

import os
import sys
import time
from contextlib import contextmanager

DELAY = float(os.environ.get("LBC_PROGRESS_DELAY", "2"))  # seconds of silence before the line appears
INTERVAL = 0.1

_active = None


class _Line:
    def __init__(self, stream):
        self.stream, self.t0, self.last, self.width = stream, time.monotonic(), 0.0, 0

    def show(self, text):
        now = time.monotonic()
        if not now - self.t0 >= DELAY or now - self.last < INTERVAL:
            return
        self.last = now
        text = f"lbc: {text} ({now - self.t0:.0f} s)"[:100]
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def clear(self):
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


@contextmanager
def on_terminal(stream=None):
    """Show progress on `stream` (default stderr) while the block runs, if it is a terminal."""
    global _active
    stream = stream or sys.stderr
    if not stream.isatty() or _active is not None:
        yield
        return
    _active = _Line(stream)
    try:
        yield
    finally:
        _active.clear()
        _active = None


def finish():
    """The long work is over: erase the status line before printing results or warnings."""
    if _active is not None:
        _active.clear()
        _active.t0 = float("inf")  # nothing more is shown


def report(phase, detail=""):
    """Where the work is: a phase ("quantize-int8") and optionally a detail ("layer 3/12 conv1")."""
    if _active is not None:
        from lbc.errors import one_line
        _active.show(one_line(f"{phase}: {detail}" if detail else phase))
