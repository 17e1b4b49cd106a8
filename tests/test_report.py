"""`lavida report`: PNGs checked for size and content, index.html rendered in headless Chromium.

Hand-made frame tables point at real encoded videos (tests/video_factory.py), so the peak frames
and masks are known exactly; one more test reports on Parquet written by a real scan.
Chromium is Debian's `chromium` package (apt-get install -y chromium).
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import decord
import numpy as np
import pytest
from frames_factory import FakeVideo, box_mask, scanned_out, write_out
from PIL import Image
from video_factory import write_video

from jobs.cli import main
from jobs.out import duck
from jobs.query.report import write_report
from jobs.query.report_plots import MASK_ALPHA, mask_edges, overlay_png
from lavida_core.rle import encode_rle
from schemas.views import EventParams

LO, HI = 0.1, 0.9
PARAMS = EventParams(min_score=0.5, max_gap=0.0, min_duration=0.0)
EVENT_SHADE = (255, 210, 171)  # EVENT_COLOR #ff7f0e at alpha 0.35 over white
THRESHOLD_RED = (214, 39, 40)  # THRESHOLD_COLOR #d62728
BANNER = (255, 204, 51)  # the "no trained weights" warning's background #ffcc33


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    """A report over: a video with two events, a quiet video, a video deleted after the scan, a failed one."""
    root = tmp_path_factory.mktemp("report")
    videos_dir = root / "videos"
    videos_dir.mkdir()
    # 50 frames at 25 fps, sampled every 5th frame: 10 samples 0.2 s apart
    for name in ("a.mp4", "b.mp4", "gone.mp4"):
        write_video(videos_dir / name, width=64, height=48, fps=25, n_frames=50)
    mask = box_mask(48, 64, top=10, left=20, size=12)
    fakes = [
        FakeVideo(
            video_id="a",
            uri=str(videos_dir / "a.mp4"),
            fps=25,
            step=5,
            height=48,
            width=64,
            scores=[LO, HI, 0.95, LO, LO, LO, LO, 0.7, LO, LO],
            masks={2: mask},
        ),
        FakeVideo(video_id="b", uri=str(videos_dir / "b.mp4"), fps=25, step=5, height=48, width=64, scores=[LO] * 10),
        FakeVideo(video_id="c", uri=str(videos_dir / "gone.mp4"), fps=25, step=5, scores=[LO, HI, LO]),
        FakeVideo(video_id="d", uri=str(videos_dir / "broken.mp4"), scores=[], status="truncated"),
    ]
    out = write_out(root / "out", fakes, trained=False)
    (videos_dir / "gone.mp4").unlink()
    to = root / "report"
    index = write_report(duck.connect(str(out)), out=str(out), to=to, params=PARAMS)
    return {"index": index, "to": to, "mask": mask, "video": videos_dir / "a.mp4"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.players: list[dict] = []  # the attributes of each <video>

    def handle_starttag(self, tag, attrs):
        if tag == "video":
            self.players.append(dict(attrs))
            return
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


def page_links(index: Path) -> list[str]:
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return [link for link in parser.links if not link.startswith("#")]


def page_players(index: Path) -> list[dict]:
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.players


def pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6) -> int:
    """How many pixels of image uint8 [H, W, 3+] are within `tolerance` of `rgb`."""
    return int((np.abs(image[..., :3].astype(int) - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def test_a_red_mask_on_a_red_object_is_still_visible(tmp_path):
    frame = np.full((40, 40, 3), 90, dtype=np.uint8)
    frame[10:30, 10:30] = (255, 0, 0)  # a red object, and the mask exactly on it
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    overlay_png(tmp_path / "red.png", frame, encode_rle(mask))
    shown = np.asarray(Image.open(tmp_path / "red.png").convert("RGB")).astype(int)
    red = np.array([255, 0, 0])
    assert (np.abs(shown[15:25, 15:25] - red).max()) <= 1  # red blended on red: no change inside...
    edge = shown[10, 10:30]  # ... but the mask's top edge is white, and the row above it black
    assert (edge == 255).all() and (shown[9, 10:30] == 0).all()
    assert pixels_near(shown.astype(np.uint8), (255, 255, 255), 0) == 4 * 20 - 4  # the whole outline


def test_index_links_relative_files_that_exist(report):
    links = page_links(report["index"])
    assert len(links) == 2 * (2 + 2 + 1)  # timelines of a, b, c; a's two event pictures (link + img each)
    for link in links:
        assert not link.startswith(("/", "file:", "http")), link
        assert (report["to"] / link).is_file(), link


def test_page_says_the_model_had_no_trained_weights_and_what_is_missing(report):
    page = report["index"].read_text(encoding="utf-8")
    assert "The model had no trained weights" in page
    assert "the video is no longer at" in page and "gone.mp4" in page  # c's event, without its picture
    assert "truncated" in page and "fake truncated error" in page  # the failed video's row
    assert "4 videos, 3 events" in page


def test_event_players_are_cued_to_each_event(report):
    """a's two events play from the video file, from the event's start to its end (media fragment);
    c's video is gone, so c's event says so instead of offering a player."""
    players = page_players(report["index"])
    video = report["video"].as_uri()
    assert [p["src"] for p in players] == [f"{video}#t=0.200,0.600", f"{video}#t=1.400,1.600"]
    assert all("controls" in p for p in players)
    page = report["index"].read_text(encoding="utf-8")
    assert page.index("a.mp4") < page.index("gone.mp4") < page.index("b.mp4")  # by peak score: a 0.95, c 0.9, b none


def test_timeline_pngs_show_events_and_threshold(report):
    timelines = sorted((report["to"] / "videos").glob("*.png"))
    # sections by peak score: a (0.95), c (0.9), b (no event); 0003 is broken.mp4 (no timeline)
    assert [p.name for p in timelines] == ["0000-a.png", "0001-c.png", "0002-b.png"]
    for path in timelines:
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape == (260, 1000, 3)
        assert image.std() > 20  # not blank
        assert pixels_near(image, THRESHOLD_RED, tolerance=30) > 300  # the dashed threshold line
    with_events = np.asarray(Image.open(timelines[0]).convert("RGB"))
    quiet = np.asarray(Image.open(timelines[2]).convert("RGB"))
    assert pixels_near(with_events, EVENT_SHADE) > 5000
    assert pixels_near(quiet, EVENT_SHADE) == 0


def test_peak_frame_has_the_mask_overlaid(report):
    pictures = sorted((report["to"] / "events").glob("*.png"))
    assert [p.name for p in pictures] == ["0000-a-0.png", "0000-a-1.png"]
    shown = np.asarray(Image.open(pictures[0]).convert("RGB")).astype(int)  # event 0: peak at frame 10
    frame = decord.VideoReader(str(report["video"]))[10].asnumpy().astype(int)  # [48, 64, 3]
    assert shown.shape == frame.shape == (48, 64, 3)
    mask = report["mask"]
    inner, outer = mask_edges(mask)
    away, interior = ~mask & ~outer, mask & ~inner
    np.testing.assert_array_equal(shown[away], frame[away])  # away from the mask: the frame itself
    assert (shown[outer] == 0).all() and (shown[inner] == 255).all()  # outlined: black outside, white inside
    expected = (1 - MASK_ALPHA) * frame[interior] + MASK_ALPHA * np.array([255, 0, 0])
    assert np.abs(shown[interior] - expected).max() <= 1  # inside: blended with red
    # event 1's peak frame has no mask: the plain frame
    plain = np.asarray(Image.open(pictures[1]).convert("RGB")).astype(int)
    np.testing.assert_array_equal(plain, decord.VideoReader(str(report["video"]))[35].asnumpy().astype(int))


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium (Debian package)")
    return path


def screenshot(chromium: str, index: Path, tmp_path: Path) -> np.ndarray:
    shot = tmp_path / "shot.png"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,900",
        index.resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(shot).convert("RGB"))


def test_report_renders_in_headless_chromium(report, chromium, tmp_path):
    image = screenshot(chromium, report["index"], tmp_path)
    assert image.shape == (900, 1200, 3)
    assert image.std() > 20  # not a blank page
    assert pixels_near(image, BANNER) > 10_000  # the warning banner is drawn
    assert pixels_near(image, EVENT_SHADE) > 1000  # the first timeline PNG loaded from its relative path


@pytest.mark.slow
def test_report_over_a_real_scan(tmp_path_factory, tmp_path, capsys):
    out = scanned_out(tmp_path_factory.getbasetemp())
    to = tmp_path / "report"
    assert main(["report", str(out), "--to", str(to), "--min-score", "0", "--min-duration", "0"]) == 0
    assert capsys.readouterr().out.strip() == str(to / "index.html")
    page = (to / "index.html").read_text(encoding="utf-8")
    assert "cam1.mp4" in page and "cam2.avi" in page and "The model had no trained weights" in page
    assert len(list((to / "videos").glob("*.png"))) == 2
    sizes = sorted(Image.open(p).size for p in (to / "events").glob("*.png"))
    assert sizes == [(64, 48), (80, 60)]  # min score 0: one event a video, its peak frame at the video's size
