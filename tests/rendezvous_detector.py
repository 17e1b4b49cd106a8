"""A FAKE detector for scans that must score at the same time (tests/test_out_concurrency.py).

RendezvousSlowDetector is fake_detector.SlowBrightDetector (LAVIDA_FAKE_DELAY_S seconds a clip) whose
first call waits until LAVIDA_FAKE_RENDEZVOUS_N scans (default 2) have reached theirs: each scan writes
a file named LAVIDA_FAKE_RENDEZVOUS_AS (its label) into the folder LAVIDA_FAKE_RENDEZVOUS and waits
(up to 120 s) until that many labels are there. Two scans started together spend different times
starting their own Ray; without this their scoring, and so their commits, may follow one another
instead of overlapping. A scan whose partner never comes goes on alone after the wait (its test's
overlap check then fails, rather than hangs).
"""

from __future__ import annotations

import os
import time

import numpy as np
from fake_detector import SlowBrightDetector

from lavida_core.detector import ClipDetection

WAIT_S = 120.0


class RendezvousSlowDetector(SlowBrightDetector):
    met = False  # per actor: only the first call waits

    def detect_batch(self, clips: list[np.ndarray], anomaly_types: list[str]) -> list[ClipDetection]:
        if not self.met:
            folder = os.environ["LAVIDA_FAKE_RENDEZVOUS"]
            with open(os.path.join(folder, os.environ["LAVIDA_FAKE_RENDEZVOUS_AS"]), "w") as file:
                file.write(str(os.getpid()))
            deadline = time.monotonic() + WAIT_S
            while len(os.listdir(folder)) < int(os.environ.get("LAVIDA_FAKE_RENDEZVOUS_N", "2")) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.met = True
        return super().detect_batch(clips, anomaly_types)
