"""Readers of the standard VAD benchmarks in their PUBLISHED layouts -> the test videos with their labels.

Each reader takes the folder the user downloaded (`--root`) and returns `BenchmarkVideo`s: a uri (a video
file, or a folder of numbered images for the frame-folder datasets, see jobs/video/frame_sequences.py),
its frame labels (0 normal / 1 anomalous) and, where the dataset has them, pixel masks. A file that
does not fit the layout raises `UserError` naming it. Layouts, as the reference's dataset classes
(VitaminCreed/LAVIDA `dataset/video/*.py`) read them:

UCSD Ped2 (`ucsd_ped2`; ROOT = UCSD_Anomaly_Dataset.v1p2 or its UCSDped2)
    UCSDped2/Test/Test001/001.tif …     frames (grayscale .tif), one folder per test video
    UCSDped2/Test/Test001_gt/001.bmp …  pixel masks, one per frame; frame label = mask non-empty
UCSD Ped1 (`ucsd_ped1`): the same below UCSDped1/ (masks for 10 of its 36 test videos; a video
    without Test0NN_gt/ is all normal in the reference protocol, left out in ours)
UCSD (`ucsd`; ROOT = UCSD_Anomaly_Dataset.v1p2): every <folder>/Test below ROOT, Ped1 and Ped2
    together, as the reference's UCSD dataset walks its root; names UCSDped1/Test001, …
ShanghaiTech campus (`shanghaitech`; ROOT = the folder holding testing/)
    testing/frames/01_0014/000.jpg …    frames, one folder per test video
    testing/test_frame_mask/01_0014.npy frame labels [T] 0/1 (our protocol's labels)
    testing/test_pixel_mask/01_0014.npy pixel masks [T, H, W] 0/1 (the reference protocol's labels:
        any anomalous pixel; needed there and for --pixel)
UBnormal (`ubnormal`; ROOT = the folder holding Scene1 … Scene29)
    abnormal_test_video_names.txt, normal_test_video_names.txt   the test split, one name a line
        (from the UBnormal repository's scripts/ folder: in ROOT or ROOT/scripts); the reference
        protocol evaluates the abnormal ones only, ours both
    Scene1/abnormal_scene_1_scenario_1.mp4                       a test video (Scene<n> from the name)
    Scene1/abnormal_scene_1_scenario_1_annotations/abnormal_scene_1_scenario_1_tracks.txt
        anomalies, one `object_id,start_frame,end_frame` a line (inclusive); frame label = any
        track covers the frame. Normal videos have no tracks file.
    …_annotations/abnormal_scene_1_scenario_1_0000_gt.png        per-frame object-id maps (0 =
        background; also accepted inside a `<name>_gt/` subfolder); pixel mask = the pixels of the
        objects whose track covers the frame
UCF-Crime (`ucf_crime`; ROOT = the folder holding the videos and the annotation file)
    Temporal_Anomaly_Annotation_for_Testing_Videos.txt   `name class s1 e1 s2 e2` (-1: no segment)
    Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4             class Normal
    Anomaly-Videos-Part-1/Abuse/Abuse028_x264.mp4 (or Anomaly-Videos/Abuse/…, or any folder
        below ROOT: a name found once anywhere below ROOT is taken)
XD-Violence (`xd_violence`; ROOT = the test folder, or the folder holding XD-Violence-test/)
    videos/<name>.mp4                   the test videos (all of them)
    annotations.txt                     `name s1 e1 s2 e2 …` (frame ranges, inclusive); a video
        not listed is normal
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from jobs.common.errors import UserError
from jobs.video.frame_sequences import frame_files

log = logging.getLogger(__name__)


# --- protocols ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EvalProtocol:
    """How a benchmark's test split is read and its numbers defined. Each field is one choice; the
    README's protocol table gives each choice's source (a reference file or a paper section)."""

    name: str
    ubnormal_normal_videos: bool  # 13: also the normal test videos (the reference: abnormal only)
    ucsd_unannotated_as_normal: bool  # 14: UCSD test videos without _gt masks: all normal (the reference) or left out
    shanghaitech_labels: str  # 16: 'pixel_mask' (any anomalous pixel; the reference) | 'frame_mask'
    full_windows_only: bool  # 15: score only whole windows of frames_per_clip x interval frames
    frame_scores: str  # 16: 'logits' (object-score logits; the reference) | 'sigmoid' (0..1)
    skip_single_class_videos: bool  # 16: leave single-class videos out of the per-video mean
    pixel_maps: str  # 14: 'logits' (mask logits, no-object frames at -1024) | 'mask_x_score'
    pixel_size: tuple[int, int] | None  # 14: both maps nearest-resized to it; None: the ground truth's size
    video_metric_xd_violence: str  # 17: the per-video metric on XD-Violence: 'auc' (the reference) | 'ap'


PROTOCOLS: dict[str, EvalProtocol] = {
    # The reference implementation (VitaminCreed/LAVIDA @56b3058: dataset/video/*.py, train_acc.py
    # `validate`, train/utils.py `VideoResultSummary`), number for number.
    "reference": EvalProtocol(
        name="reference", ubnormal_normal_videos=False, ucsd_unannotated_as_normal=True, shanghaitech_labels="pixel_mask",
        full_windows_only=True,
        frame_scores="logits", skip_single_class_videos=False, pixel_maps="logits", pixel_size=(158, 238),
        video_metric_xd_violence="auc",
    ),
    # Ours, each a deliberate difference (README, protocol table): the benchmarks' own test splits and
    # labels, every frame scored, scores in 0..1, AP where the paper reports AP, single-class videos
    # (whose AUC would rank only the two appended end points) out of the mean, pixels at the truth's size.
    "lavida": EvalProtocol(
        name="lavida", ubnormal_normal_videos=True, ucsd_unannotated_as_normal=False, shanghaitech_labels="frame_mask",
        full_windows_only=False,
        frame_scores="sigmoid", skip_single_class_videos=True, pixel_maps="mask_x_score", pixel_size=None,
        video_metric_xd_violence="ap",
    ),
}  # fmt: skip


def protocol_of(name: str) -> EvalProtocol:
    if name not in PROTOCOLS:
        raise UserError(f"--protocol {name!r}: choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# --- labels and masks -------------------------------------------------------------------------


class FrameLabels(Protocol):
    def for_frames(self, n_frames: int) -> np.ndarray:
        """0/1 int8 [n_frames] for a video the decoder found n_frames frames in."""


@dataclass(frozen=True)
class ExplicitLabels:
    """One label per frame, as the dataset gives them (frame folders: one per image)."""

    values: np.ndarray  # [T] 0/1

    def for_frames(self, n_frames: int) -> np.ndarray:
        values = np.asarray(self.values, dtype=np.int8)
        if len(values) != n_frames:  # the reference cuts the labels to the scored length
            log.warning("%d frame labels for %d decoded frames: using the first %d", len(values), n_frames, min(len(values), n_frames))
        return values[:n_frames]


@dataclass(frozen=True)
class RangeLabels:
    """Anomalous frame ranges (inclusive); frames outside them are normal."""

    ranges: tuple[tuple[int, int], ...]

    def for_frames(self, n_frames: int) -> np.ndarray:
        labels = np.zeros(n_frames, dtype=np.int8)
        for start, end in self.ranges:
            labels[max(start, 0) : max(end + 1, 0)] = 1
        return labels


class PixelMasks(Protocol):
    def masks(self, frame_indices: Sequence[int]) -> np.ndarray:
        """Ground-truth masks bool [N, H, W] of the given frames."""


@dataclass(frozen=True)
class ImageMasks:
    """One mask image per frame (Ped2's .bmp): anomalous where the pixel is not 0."""

    paths: tuple[str, ...]

    def masks(self, frame_indices: Sequence[int]) -> np.ndarray:
        return np.stack([read_mask(self.paths[i]) != 0 for i in frame_indices])


@dataclass(frozen=True)
class NpyMasks:
    """All masks of a video in one .npy [T, H, W] (ShanghaiTech)."""

    path: str

    def masks(self, frame_indices: Sequence[int]) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")[list(frame_indices)] != 0


@dataclass(frozen=True)
class ObjectMapMasks:
    """UBnormal: per-frame object-id maps; anomalous = objects whose track covers the frame."""

    folder: str  # the video's _annotations folder
    video_name: str
    tracks: tuple[tuple[int, int, int], ...]  # (object_id, start, end), inclusive

    def masks(self, frame_indices: Sequence[int]) -> np.ndarray:
        out = []
        for index in frame_indices:
            ids = read_mask(self.map_path(index))  # [H, W] object ids
            active = [obj for obj, start, end in self.tracks if start <= index <= end]
            out.append(np.isin(ids, active))
        return np.stack(out)

    def map_path(self, index: int) -> str:
        name = f"{self.video_name}_{index:04d}_gt.png"
        for path in (os.path.join(self.folder, name), os.path.join(self.folder, f"{self.video_name}_gt", name)):
            if os.path.isfile(path):
                return path
        raise UserError(f"UBnormal: no object map {name} in {self.folder} (nor in its {self.video_name}_gt/)")


@dataclass(frozen=True)
class EmptyMasks:
    """No pixel ground truth: every pixel normal, at the size of the video's frames."""

    frame_path: str  # one of the video's frames, for its size

    def masks(self, frame_indices: Sequence[int]) -> np.ndarray:
        height, width = read_mask(self.frame_path).shape
        return np.zeros((len(frame_indices), height, width), dtype=bool)


@dataclass(frozen=True)
class MaskLabels:
    """Frame labels from pixel masks: anomalous where any pixel of the frame's mask is
    (the reference's ShanghaiTech labels: `(test_pixel_mask == 1).any`)."""

    masks: PixelMasks
    n_masks: int

    def for_frames(self, n_frames: int) -> np.ndarray:
        n = min(n_frames, self.n_masks)
        if n != n_frames:
            log.warning("%d frame masks for %d decoded frames: using the first %d", self.n_masks, n_frames, n)
        chunks = [self.masks.masks(range(start, min(start + 256, n))).any(axis=(1, 2)) for start in range(0, n, 256)]
        return np.concatenate(chunks).astype(np.int8) if chunks else np.zeros(0, dtype=np.int8)


def read_mask(path: str) -> np.ndarray:
    """A mask image as a 2-D array (first channel of a colour image)."""
    with Image.open(path) as image:
        array = np.asarray(image)
    return array[..., 0] if array.ndim == 3 else array


@dataclass(frozen=True)
class BenchmarkVideo:
    name: str  # the dataset's name of the video (Test001, 01_0014, Abuse028_x264.mp4, …)
    uri: str  # absolute path of the video file or of the folder of frames
    labels: FrameLabels
    pixel_masks: PixelMasks | None = None


# --- the readers ------------------------------------------------------------------------------


def read_ucsd_ped1(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    return _read_ucsd_test(_ucsd_test_folder(root, "UCSDped1", "UCSD Ped1"), "UCSD Ped1", rules)


def read_ucsd_ped2(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    return _read_ucsd_test(_ucsd_test_folder(root, "UCSDped2", "UCSD Ped2"), "UCSD Ped2", rules)


def read_ucsd(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    """Every UCSDped*/Test below ROOT (UCSD_Anomaly_Dataset.v1p2: Ped1 and Ped2), as the reference's
    `make_ucsdped_dataset` walks its data_root; video names are UCSDped1/Test001, …"""
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"--root {root} is not a folder")
    tests = sorted(p / "Test" for p in base.iterdir() if p.is_dir() and (p / "Test").is_dir())
    if not tests:
        raise UserError(f"UCSD: no <folder>/Test below {root}; give UCSD_Anomaly_Dataset.v1p2 (it holds UCSDped1 and UCSDped2)")
    return [dataclasses.replace(v, name=f"{test.parent.name}/{v.name}") for test in tests for v in _read_ucsd_test(test, "UCSD", rules)]


def _ucsd_test_folder(root: str, dataset: str, title: str) -> Path:
    return _first_dir(
        root,
        [f"{dataset}/Test", "Test"],
        f"{title}: no {dataset}/Test folder in {{root}}; give the folder that holds {dataset} "
        f"(UCSD_Anomaly_Dataset.v1p2) or {dataset} itself",
    )


def _read_ucsd_test(test: Path, title: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    """Test001, Test002, … (.tif frames) with Test001_gt/ (.bmp masks, one per frame). A video
    without a _gt folder (Ped1 has masks for 10 of its 36): the reference takes it as all normal
    with empty masks; ours leaves it out (its anomalies are not annotated per pixel)."""
    folders = sorted(p for p in test.iterdir() if p.is_dir() and re.fullmatch(r"Test\d+", p.name))
    if not folders:
        raise UserError(f"{title}: no Test001, Test002, … folders in {test}")
    videos, unannotated = [], []
    for folder in folders:
        frames = [f for f in frame_files(str(folder)) if f.lower().endswith((".tif", ".tiff"))]
        if not frames:
            raise UserError(f"{title}: {folder} holds no .tif frames (001.tif, 002.tif, …)")
        gt = folder.parent / f"{folder.name}_gt"
        if not gt.is_dir():
            unannotated.append(folder.name)
            if rules.ucsd_unannotated_as_normal:
                videos.append(BenchmarkVideo(folder.name, str(folder.resolve()), RangeLabels(()), EmptyMasks(frames[0])))
            continue
        masks = [f for f in frame_files(str(gt)) if f.lower().endswith(".bmp")]
        if len(masks) != len(frames):
            raise UserError(f"{title}: {gt} should hold one .bmp mask per frame ({len(frames)}), found {len(masks)}")
        labels = np.array([read_mask(path).any() for path in masks], dtype=np.int8)
        videos.append(BenchmarkVideo(folder.name, str(folder.resolve()), ExplicitLabels(labels), ImageMasks(tuple(masks))))
    if unannotated:
        how = "taken as all normal (the reference protocol)" if rules.ucsd_unannotated_as_normal else "left out"
        log.warning("%s: %d test videos have no _gt masks folder (%s, …): %s", title, len(unannotated), unannotated[0], how)
    return videos


def read_shanghaitech(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    testing = _first_dir(
        root, ["testing", "."], "ShanghaiTech: no testing/frames folder in {root}; give the folder that holds testing/", must_hold="frames"
    )
    folders = sorted(p for p in (testing / "frames").iterdir() if p.is_dir() and re.fullmatch(r"\d+_\d+", p.name))
    if not folders:
        raise UserError(f"ShanghaiTech: no 01_0014-style folders in {testing / 'frames'}")
    videos = []
    for folder in folders:
        frames = [f for f in frame_files(str(folder)) if f.lower().endswith((".jpg", ".jpeg"))]
        if not frames:
            raise UserError(f"ShanghaiTech: {folder} holds no .jpg frames")
        pixel_file = testing / "test_pixel_mask" / f"{folder.name}.npy"
        masks = NpyMasks(str(pixel_file)) if pixel_file.is_file() else None
        videos.append(BenchmarkVideo(folder.name, str(folder.resolve()), _shanghaitech_labels(testing, folder, len(frames), rules), masks))
    return videos


def _shanghaitech_labels(testing: Path, folder: Path, n_frames: int, rules: EvalProtocol) -> FrameLabels:
    """From test_pixel_mask (the reference) or test_frame_mask (the dataset's frame labels); the two
    published files disagree on some frames."""
    source = "test_pixel_mask" if rules.shanghaitech_labels == "pixel_mask" else "test_frame_mask"
    path = testing / source / f"{folder.name}.npy"
    values = _load_npy(path, "ShanghaiTech", mmap_mode="r")
    if len(values) != n_frames:
        raise UserError(f"ShanghaiTech: {path} has {len(values)} frames of labels for {n_frames} frames in {folder}")
    if source == "test_pixel_mask":
        return MaskLabels(NpyMasks(str(path)), len(values))
    return ExplicitLabels((np.asarray(values).reshape(-1) != 0).astype(np.int8))


UBNORMAL_NAME = re.compile(r"(abnormal|normal)_scene_(\d+)_scenario_\w+")


def read_ubnormal(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    """The abnormal test videos (the reference: `only_anomaly_video=True`), then, with
    `ubnormal_normal_videos`, the normal ones (the UBnormal authors' full test split)."""
    base = Path(root)
    names = _ubnormal_split(base, "abnormal_test_video_names.txt")
    if rules.ubnormal_normal_videos:
        names += _ubnormal_split(base, "normal_test_video_names.txt")
    return [_ubnormal_video(base, name) for name in names]


def _ubnormal_split(base: Path, file_name: str) -> list[str]:
    for path in (base / file_name, base / "scripts" / file_name):
        if path.is_file():
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            bad = next((n for n in names if not UBNORMAL_NAME.fullmatch(n)), None)
            if bad:
                raise UserError(f"UBnormal: {path} lists {bad!r}, not a name like abnormal_scene_1_scenario_1")
            return names
    raise UserError(f"UBnormal: no {file_name} in {base} or {base / 'scripts'}; copy it from the UBnormal repository's scripts/ folder")


def _ubnormal_video(base: Path, name: str) -> BenchmarkVideo:
    scene = UBNORMAL_NAME.fullmatch(name).group(2)
    video = base / f"Scene{scene}" / f"{name}.mp4"
    if not video.is_file():
        raise UserError(f"UBnormal: test video {video} does not exist")
    annotations = base / f"Scene{scene}" / f"{name}_annotations"
    tracks: tuple[tuple[int, int, int], ...] = ()
    if name.startswith("abnormal"):
        tracks = _ubnormal_tracks(annotations / f"{name}_tracks.txt")
    labels = RangeLabels(tuple((start, end) for _, start, end in tracks))
    masks = ObjectMapMasks(str(annotations), name, tracks) if annotations.is_dir() else None
    return BenchmarkVideo(name, str(video.resolve()), labels, masks)


def _ubnormal_tracks(path: Path) -> tuple[tuple[int, int, int], ...]:
    if not path.is_file():
        raise UserError(f"UBnormal: the abnormal video's tracks file {path} does not exist")
    tracks = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj, start, end = (int(float(v)) for v in line.split(","))
        except ValueError:
            raise UserError(f"UBnormal: {path} line {number}: expected 'object_id,start_frame,end_frame', got {line.strip()!r}") from None
        tracks.append((obj, start, end))
    return tuple(tracks)


UCF_ANNOTATIONS = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
UCF_NORMAL_FOLDER = "Testing_Normal_Videos_Anomaly"


def read_ucf_crime(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    base = Path(root)
    annotation_file = base / UCF_ANNOTATIONS
    if not annotation_file.is_file():
        raise UserError(f"UCF-Crime: no {UCF_ANNOTATIONS} in {base}")
    found = _index_files(base, ".mp4")
    videos = []
    for number, line in enumerate(annotation_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6 or not all(_is_int(v) for v in fields[2:]):
            raise UserError(f"UCF-Crime: {annotation_file} line {number}: expected 'name class s1 e1 s2 e2', got {line.strip()!r}")
        name, label = fields[0], fields[1]
        s1, e1, s2, e2 = (int(v) for v in fields[2:])
        ranges = tuple((s, e) for s, e in ((s1, e1), (s2, e2)) if s >= 0 and e >= 0)
        path = _ucf_path(found.get(name, []), label)
        if path is None:
            expected = f"{UCF_NORMAL_FOLDER}/{name}" if label.lower() == "normal" else f"Anomaly-Videos*/{label}/{name}"
            raise UserError(f"UCF-Crime: {name} ({annotation_file.name} line {number}) not found below {base}: expected {expected}")
        videos.append(BenchmarkVideo(name, str(path.resolve()), RangeLabels(ranges)))
    return videos


def _ucf_path(candidates: list[Path], label: str) -> Path | None:
    """The file of a test video: the one in its class folder (Testing_Normal_Videos_Anomaly for
    Normal), or the only file of that name below ROOT."""
    folder = UCF_NORMAL_FOLDER if label.lower() == "normal" else label
    in_folder = [p for p in candidates if p.parent.name.lower() == folder.lower()]
    if in_folder:
        return in_folder[0]
    return candidates[0] if len(candidates) == 1 else None


def read_xd_violence(root: str, rules: EvalProtocol) -> list[BenchmarkVideo]:
    test = _first_dir(
        root, ["XD-Violence-test", "."], "XD-Violence: no videos/ folder in {root} or {root}/XD-Violence-test", must_hold="videos"
    )
    annotation_file = test / "annotations.txt"
    if not annotation_file.is_file():
        raise UserError(f"XD-Violence: no annotations.txt in {test}")
    ranges = _xd_annotations(annotation_file)
    files = sorted(p for p in (test / "videos").iterdir() if p.is_file() and p.suffix.lower() == ".mp4" and not p.name.startswith("."))
    if not files:
        raise UserError(f"XD-Violence: no .mp4 test videos in {test / 'videos'}")
    stems = {p.stem for p in files}
    missing = next((name for name in ranges if name not in stems), None)
    if missing:
        raise UserError(f"XD-Violence: {annotation_file} annotates {missing!r}, which is not in {test / 'videos'}")
    for path in files:
        code = path.stem.rsplit("_label_", 1)[-1] if "_label_" in path.stem else "A"
        if code != "A" and path.stem not in ranges:
            log.warning("XD-Violence: %s is labelled %s but has no line in annotations.txt: taken as normal", path.name, code)
    return [BenchmarkVideo(p.name, str(p.resolve()), RangeLabels(ranges.get(p.stem, ()))) for p in files]


def _xd_annotations(path: Path) -> dict[str, tuple[tuple[int, int], ...]]:
    ranges = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        values = fields[1:]
        if not values or len(values) % 2 or not all(_is_int(v) for v in values):
            raise UserError(f"XD-Violence: {path} line {number}: expected 'name start end [start end …]', got {line.strip()!r}")
        pairs = np.array(values, dtype=np.int64).reshape(-1, 2)
        ranges[fields[0].removesuffix(".mp4")] = tuple((int(s), int(e)) for s, e in pairs)
    return ranges


# --- helpers ----------------------------------------------------------------------------------


def _first_dir(root: str, candidates: list[str], message: str, *, must_hold: str | None = None) -> Path:
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"--root {root} is not a folder")
    for candidate in candidates:
        path = (base / candidate).resolve()
        if path.is_dir() and (must_hold is None or (path / must_hold).is_dir()):
            return path
    raise UserError(message.format(root=root))


def _load_npy(path: Path, dataset: str, mmap_mode: str | None = None) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{dataset}: {path} does not exist")
    try:
        return np.load(path, mmap_mode=mmap_mode)
    except (ValueError, OSError) as error:
        raise UserError(f"{dataset}: {path} is not a readable .npy file: {error}") from None


def _index_files(base: Path, extension: str) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for folder, _, names in os.walk(base):
        for name in sorted(names):
            if name.lower().endswith(extension) and not name.startswith("."):
                found.setdefault(name, []).append(Path(folder) / name)
    return found


def _is_int(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    title: str
    reader: Callable[[str, EvalProtocol], list[BenchmarkVideo]]  # (ROOT, protocol rules) -> the test videos
    sample_interval: int  # the paper's
    anomaly_types: tuple[str, ...]  # the reference's anomaly names for the dataset
    paper_metric: str  # 'frame AUC' | 'frame AP' | 'pixel AUC': the metric the paper reports
    paper_value: float | None  # the paper's number, in percent (None: the paper has none)
    has_pixel_masks: bool

    def read(self, root: str, protocol: str = "reference") -> list[BenchmarkVideo]:
        """The test split in ROOT, read as `protocol` (a key of PROTOCOLS) reads it."""
        return self.reader(root, protocol_of(protocol))


BENCHMARKS: dict[str, Benchmark] = {
    "ucsd_ped2": Benchmark(
        title="UCSD Ped2", reader=read_ucsd_ped2, sample_interval=1,
        anomaly_types=("car", "cart", "wheelchair", "skate", "bicycle"),
        paper_metric="pixel AUC", paper_value=87.68, has_pixel_masks=True,
    ),
    "ucsd_ped1": Benchmark(
        title="UCSD Ped1", reader=read_ucsd_ped1, sample_interval=1,
        anomaly_types=("car", "cart", "wheelchair", "skate", "bicycle"),
        paper_metric="pixel AUC", paper_value=None, has_pixel_masks=True,
    ),
    # The reference's `ucsdped` test set: every UCSDped*/Test below its data_root, which its config
    # points at UCSD_Anomaly_Dataset.v1p2 (Ped1 and Ped2 pooled). The paper's table names Ped2.
    "ucsd": Benchmark(
        title="UCSD Ped1+Ped2", reader=read_ucsd, sample_interval=1,
        anomaly_types=("car", "cart", "wheelchair", "skate", "bicycle"),
        paper_metric="pixel AUC", paper_value=None, has_pixel_masks=True,
    ),
    "shanghaitech": Benchmark(
        title="ShanghaiTech", reader=read_shanghaitech, sample_interval=2,
        anomaly_types=(
            "bicycle", "fight", "throw", "pick", "hand truck", "run", "skate", "falling", "jumping", "motorcycle",
            "tricycle", "cart", "waving stick", "hurdle", "vehicle", "play", "baby carriage", "truck",
        ),
        paper_metric="frame AUC", paper_value=85.28, has_pixel_masks=True,
    ),
    "ubnormal": Benchmark(
        title="UBnormal", reader=read_ubnormal, sample_interval=4,
        anomaly_types=(
            "running", "jumping", "falling", "fighting", "sleeping", "crawling", "having a seizure", "laying down",
            "dancing", "stealing", "rotating 360 degrees", "shuffling", "injured", "drunk", "stumbling walk",
            "car accident", "fire", "smoke", "jaywalking", "driving outside lane",
        ),
        paper_metric="frame AUC", paper_value=76.45, has_pixel_masks=True,
    ),
    "ucf_crime": Benchmark(
        title="UCF-Crime", reader=read_ucf_crime, sample_interval=128,
        anomaly_types=(
            "abuse", "arrest", "arson", "assault", "burglary", "explosion", "fighting", "road accidents", "robbery",
            "shooting", "shoplifting", "stealing", "vandalism",
        ),
        paper_metric="frame AUC", paper_value=82.18, has_pixel_masks=False,
    ),
    "xd_violence": Benchmark(
        title="XD-Violence", reader=read_xd_violence, sample_interval=128,
        anomaly_types=("fighting", "shooting", "riot", "abuse", "car accident", "explosion"),
        paper_metric="frame AP", paper_value=90.62, has_pixel_masks=False,
    ),
}  # fmt: skip
