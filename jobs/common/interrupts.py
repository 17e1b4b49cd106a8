"""Ctrl-C and SIGTERM around work that must not be cut in half.

`jobs/cli/main.py` turns SIGTERM into KeyboardInterrupt, as Ctrl-C is, for the whole command. Inside
`deferred_interrupts()` both signals are held and raised as one KeyboardInterrupt when the block
ends, so a video's commit (its tables, then its `videos` marker) is never left half done by a stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt
