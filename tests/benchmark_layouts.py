"""Tiny generated datasets laid out EXACTLY as the VAD benchmarks publish them. Shared test helper.

    write_ucsd_ped2(root, videos)       root/UCSDped2/Test/Test001/001.tif …, Test001_gt/001.bmp …
                                        (folder="UCSDped1": the same for Ped1)
    write_shanghaitech(root, videos)    root/testing/frames/01_0014/000.jpg …, test_frame_mask/, test_pixel_mask/
    write_ubnormal(root, videos)        root/Scene1/abnormal_scene_1_scenario_1.mp4, …_annotations/…, name lists
    write_ucf_crime(root, videos)       Anomaly-Videos-Part-1/<Class>/*.mp4, Testing_Normal_Videos_Anomaly/,
                                        Temporal_Anomaly_Annotation_for_Testing_Videos.txt
    write_xd_violence(root, videos)     root/XD-Violence-test/videos/*.mp4, annotations.txt

Each video is a `Spec`: a name, a frame count and anomalous frame ranges (inclusive). Frames
(`make_frames`) are a dark background (40) with a dim block (100) walking along the top in every
frame (a normal passer-by; it also keeps clips from being perfectly static) and, in anomalous
frames only, a bright square (255) — the ground-truth mask. With tests/fake_detector.BrightDetector (score = mean brightness, mask =
pixels > 200) the anomalous frames score higher and the masks match, so a correct evaluation gives
frame AUC 1 and a label/frame misalignment shows. Each writer also drops files a reader must ignore
(training videos, hidden files) and returns the names of the test videos in reader order.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

HEIGHT, WIDTH = 48, 64  # decord 0.6 mis-copies some widths (48 px); 64 is safe
BACKGROUND, PASSER_BY, SQUARE = 40, 100, 255


@dataclass(frozen=True)
class Spec:
    name: str
    n_frames: int
    anomalous: tuple[tuple[int, int], ...] = ()  # inclusive frame ranges
    label: str = "Normal"  # UCF-Crime class / XD-Violence label code ('A' normal, 'B1' fighting, …)

    def labels(self) -> np.ndarray:
        labels = np.zeros(self.n_frames, dtype=np.int8)
        for start, end in self.anomalous:
            labels[start : end + 1] = 1
        return labels


def make_frames(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [T, H, W, 3], masks bool [T, H, W]): the square only where labels say anomalous."""
    frames = np.full((spec.n_frames, HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
    masks = np.zeros((spec.n_frames, HEIGHT, WIDTH), dtype=bool)
    side = HEIGHT // 3
    for t in np.flatnonzero(spec.labels()):
        left = int((WIDTH - side) * t / max(1, spec.n_frames - 1))
        masks[t, 16 : 16 + side, left : left + side] = True
    for t in range(spec.n_frames):  # the passer-by: same size in every frame, so the same brightness
        frames[t, 2:8, (2 * t) % (WIDTH - 6) : (2 * t) % (WIDTH - 6) + 6] = PASSER_BY
    frames[masks] = SQUARE
    return frames, masks


def write_mp4(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """H.264 in MP4 (what UBnormal, UCF-Crime and XD-Violence ship)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_ucsd_ped2(root: Path, videos: list[Spec], *, folder: str = "UCSDped2", without_gt: tuple[int, ...] = ()) -> list[str]:
    """UCSD_Anomaly_Dataset.v1p2 layout: grayscale .tif frames, .bmp masks (0/255), both from 001.
    folder: UCSDped2 or UCSDped1; without_gt: numbers of test videos with no Test0NN_gt folder (Ped1
    ships masks for 10 of its 36 test videos)."""
    test = root / folder / "Test"
    for number, spec in enumerate(videos, 1):
        frames, masks = make_frames(spec)
        video, gt = test / f"Test{number:03d}", test / f"Test{number:03d}_gt"
        video.mkdir(parents=True)
        for t in range(spec.n_frames):
            Image.fromarray(frames[t, :, :, 0]).save(video / f"{t + 1:03d}.tif")
        if number not in without_gt:
            gt.mkdir()
            for t in range(spec.n_frames):
                Image.fromarray(masks[t].astype(np.uint8) * 255).save(gt / f"{t + 1:03d}.bmp")
        (video / "._001.tif").write_bytes(b"macOS resource fork")  # hidden: not a frame
    train = root / folder / "Train" / "Train001"
    train.mkdir(parents=True)
    Image.fromarray(np.zeros((HEIGHT, WIDTH), dtype=np.uint8)).save(train / "001.tif")
    (root / folder / f"{folder}.m").write_text("% the dataset's MATLAB ground truth file\n")
    return [f"Test{number:03d}" for number in range(1, len(videos) + 1)]


def write_shanghaitech(root: Path, videos: list[Spec]) -> list[str]:
    """shanghaitech/testing/{frames/<scene>_<clip>/000.jpg, test_frame_mask/*.npy, test_pixel_mask/*.npy}."""
    testing = root / "testing"
    (testing / "test_frame_mask").mkdir(parents=True)
    (testing / "test_pixel_mask").mkdir()
    for spec in videos:
        frames, masks = make_frames(spec)
        folder = testing / "frames" / spec.name
        folder.mkdir(parents=True)
        for t in range(spec.n_frames):
            Image.fromarray(frames[t]).save(folder / f"{t:03d}.jpg", quality=95)
        np.save(testing / "test_frame_mask" / f"{spec.name}.npy", spec.labels())
        np.save(testing / "test_pixel_mask" / f"{spec.name}.npy", masks.astype(np.uint8))
    (root / "training" / "videos").mkdir(parents=True)
    return sorted(spec.name for spec in videos)


def write_ubnormal(root: Path, videos: list[Spec]) -> list[str]:
    """UBnormal: Scene<n>/<name>.mp4, <name>_annotations/{<name>_tracks.txt, <name>_<frame:04d>_gt.png},
    and the test split files. Object 1 is the square (anomalous in its track), object 2 a normal
    'person' present in every frame; names are abnormal_scene_<n>_scenario_<m> / normal_scene_…"""
    for spec in videos:
        frames, masks = make_frames(spec)
        scene = root / f"Scene{spec.name.split('_')[2]}"
        write_mp4(scene / f"{spec.name}.mp4", frames, fps=30)
        annotations = scene / f"{spec.name}_annotations"
        annotations.mkdir(parents=True)
        for t in range(spec.n_frames):
            ids = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
            ids[2:8, 2:8] = 2  # a normal person
            ids[masks[t]] = 1
            Image.fromarray(ids).save(annotations / f"{spec.name}_{t:04d}_gt.png")
        if spec.name.startswith("abnormal"):
            lines = [f"1,{float(start)},{float(end)}" for start, end in spec.anomalous]
            (annotations / f"{spec.name}_tracks.txt").write_text("\n".join(lines) + "\n")
    abnormal = [s.name for s in videos if s.name.startswith("abnormal")]
    normal = [s.name for s in videos if s.name.startswith("normal")]
    (root / "abnormal_test_video_names.txt").write_text("\n".join(abnormal) + "\n")
    (root / "normal_test_video_names.txt").write_text("\n".join(normal) + "\n")
    (root / "normal_training_video_names.txt").write_text("normal_scene_1_scenario_9\n")
    write_mp4(root / "Scene1" / "normal_scene_1_scenario_9.mp4", make_frames(Spec("t", 4))[0])  # training: not in the test split
    return abnormal + normal


def write_ucf_crime(root: Path, videos: list[Spec]) -> list[str]:
    """UCF-Crime: Anomaly-Videos-Part-1/<Class>/<name>.mp4, Testing_Normal_Videos_Anomaly/<name>.mp4 and
    the temporal annotation file (`name  Class  s1  e1  s2  e2`, -1 where there is no segment)."""
    lines = []
    for spec in videos:
        folder = root / "Testing_Normal_Videos_Anomaly" if spec.label == "Normal" else root / "Anomaly-Videos-Part-1" / spec.label
        write_mp4(folder / spec.name, make_frames(spec)[0], fps=30)
        segments = [v for pair in spec.anomalous for v in pair] + [-1] * (4 - 2 * len(spec.anomalous))
        lines.append("  ".join([spec.name, spec.label, *map(str, segments)]))
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text("\n".join(lines) + "\n")
    write_mp4(root / "Training_Normal_Videos_Anomaly" / "Normal_Videos001_x264.mp4", make_frames(Spec("t", 4))[0])
    (root / "Anomaly_Train.txt").write_text("Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n")
    return [spec.name for spec in videos]


def write_xd_violence(root: Path, videos: list[Spec]) -> list[str]:
    """XD-Violence-test/videos/<name>_label_<code>.mp4 and annotations.txt (`name s1 e1 s2 e2 …`, no .mp4)."""
    test = root / "XD-Violence-test"
    lines = []
    names = []
    for spec in videos:
        stem = f"{spec.name}__#00-00-00_00-00-02_label_{spec.label}"
        write_mp4(test / "videos" / f"{stem}.mp4", make_frames(spec)[0], fps=24)
        names.append(f"{stem}.mp4")
        if spec.anomalous:
            lines.append(" ".join([stem, *(str(v) for pair in spec.anomalous for v in pair)]))
    (test / "annotations.txt").write_text("\n".join(lines) + "\n")
    (root / "XD-Violence-train" / "videos").mkdir(parents=True)
    return sorted(names)
