"""Progress of a long job over videos: a tqdm bar (done/total, ETA) on a terminal, one log line per
video otherwise (cron, redirected logs), with the same counts and ETA."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, *, total: int, unit: str = "video") -> None:
        self.total, self.count = total, 0
        self.started = time.monotonic()
        self.bar = tqdm(total=total, unit=unit, dynamic_ncols=True) if sys.stderr.isatty() else None

    def done(self, status: str, uri: str, detail: str) -> None:
        """One more item finished with `status` ('ok' or an error kind)."""
        self.count += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.count * (self.total - self.count)
        if self.bar is not None:
            self.bar.update(1)
            if status != "ok":
                self.bar.write(f"{status} {uri}: {detail}")
            return
        log.info("[%d/%d, %.0fs, eta %.0fs] %s %s (%s)", self.count, self.total, elapsed, eta, status, uri, detail)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
