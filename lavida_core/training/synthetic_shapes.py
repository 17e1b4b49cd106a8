"""A synthetic segmentation dataset: coloured shapes moving over textured backgrounds.

Every category is a colour word and a shape word ("red circle", "blue star"). Some colour/shape
combinations are held out of training (``held_out_categories``) so that a model can be tested on
names built from words it has seen, but never together.

Videos are generated as pure numpy arrays, deterministically from a seed and an index (the tests
lay them out on disk in the layouts ``lavida_core.training.seg_datasets`` reads: tests/seg_layouts.py).

    config = ShapesConfig(n_videos=32, seed=0)
    video = render_training_video(config, index=3)   # SyntheticVideo
    dataset = shapes_seg_dataset(config)             # all training videos as a SegDataset
    video.frames          # uint8 [T, H, W, 3]
    video.objects[0].name, video.objects[0].masks     # "red circle", bool [T, H, W]
    test = render_anomaly_video(config, index=0, novel=True)   # AnomalyTestVideo
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from lavida_core.errors import InputError
from lavida_core.training.seg_datasets import ArraySegDataset, SegObject, SegSample

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 215, 40),
    "purple": (150, 60, 200),
    "orange": (250, 140, 30),
    "white": (250, 250, 250),
    "cyan": (40, 210, 220),
}

# A shape is a boolean function of pixel offsets from its centre: (dy, dx, radius) -> mask.
ShapeFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _regular_polygon(n_vertices: int, rotation: float, inner: float | None = None) -> np.ndarray:
    """Unit-radius polygon vertices [V, 2] as (y, x); ``inner`` makes a star with that inner radius."""
    if inner is None:
        angles = rotation + 2 * np.pi * np.arange(n_vertices) / n_vertices
        radii = np.ones(n_vertices)
    else:
        angles = rotation + np.pi * np.arange(2 * n_vertices) / n_vertices
        radii = np.where(np.arange(2 * n_vertices) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.sin(angles), radii * np.cos(angles)], axis=1)


def _inside_polygon(dy: np.ndarray, dx: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd rule: a pixel is inside when a ray to +x crosses the outline an odd number of times."""
    inside = np.zeros(dy.shape, dtype=bool)
    for (y0, x0), (y1, x1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        spans = (y0 > dy) != (y1 > dy)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (dy - y0) * (x1 - x0) / (y1 - y0)
        inside ^= spans & (dx < x_cross)
    return inside


def _polygon_shape(vertices: np.ndarray) -> ShapeFn:
    return lambda dy, dx, r: _inside_polygon(dy / r, dx / r, vertices)


SHAPES: dict[str, ShapeFn] = {
    "circle": lambda dy, dx, r: dy**2 + dx**2 <= r**2,
    "square": lambda dy, dx, r: np.maximum(np.abs(dy), np.abs(dx)) <= 0.8 * r,
    "diamond": lambda dy, dx, r: np.abs(dy) + np.abs(dx) <= r,
    "ring": lambda dy, dx, r: (dy**2 + dx**2 <= r**2) & (dy**2 + dx**2 >= (0.55 * r) ** 2),
    "cross": lambda dy, dx, r: (np.abs(dy) <= r) & (np.abs(dx) <= 0.3 * r) | (np.abs(dx) <= r) & (np.abs(dy) <= 0.3 * r),
    "triangle": _polygon_shape(_regular_polygon(3, rotation=-np.pi / 2)),
    "star": _polygon_shape(_regular_polygon(5, rotation=-np.pi / 2, inner=0.45)),
    "hexagon": _polygon_shape(_regular_polygon(6, rotation=0.0)),
}


@dataclass(frozen=True)
class ShapesConfig:
    """What the synthetic dataset looks like; every video is a pure function of (seed, index)."""

    n_videos: int = 64  # training videos
    n_frames: int = 8  # frames per video
    height: int = 64
    width: int = 64
    min_objects: int = 1  # objects per training video
    max_objects: int = 3
    min_radius: float = 0.10  # object radius as a fraction of min(height, width)
    max_radius: float = 0.20
    max_speed: float = 0.06  # pixels per frame as a fraction of min(height, width)
    # Probability that a training object is visible in a run of frames only (it enters or leaves),
    # so that per-frame object scores are trained, not only "somewhere in this clip".
    partial_visibility: float = 0.5
    # Training frames go through JPEG at a quality drawn from this range (what frames look like after
    # a codec, e.g. chroma subsampling and block edges); None keeps them pristine. A model trained on
    # pristine frames only scores JPEG or H.264 frames much worse (bench/RESULTS.md, demo model).
    jpeg_quality: tuple[int, int] | None = None
    # The training samples (shapes_seg_dataset) also hold one object per word of their names: "red"
    # (every red thing) and "circle" (every circle) beside "red circle", so a prompt can name a single
    # word. For recipes that teach each word on its own before combinations never seen together are
    # asked for; every sample of such a dataset holds its words, so a word is never named as absent
    # while it shows. Beside datasets without word objects, set `grounding.words` too, or grounding
    # learns "red" as absent from their red things. Anomaly test videos are unchanged.
    word_objects: bool = False
    # False: the training videos draw every colour-shape combination, the held-out ones too. Only for a
    # grounding stage's own data ("grounding": {"datasets": ...}), which stands in for the pretraining
    # of the reference's CLIP and SAM2 (they have seen every combination; the LAVIDA stage never names
    # the held-out ones). `held_out_categories` still names the same combinations.
    hold_out: bool = True
    colours: tuple[str, ...] = tuple(COLOURS)
    shapes: tuple[str, ...] = tuple(SHAPES)
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [c for c in self.colours if c not in COLOURS] + [s for s in self.shapes if s not in SHAPES]
        if unknown:
            raise InputError(f"unknown colour or shape words {unknown}; known: {list(COLOURS)}, {list(SHAPES)}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise InputError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        n_training = len(training_categories(self))
        if n_training < self.max_objects:
            raise InputError(
                f"{len(self.colours)} colours x {len(self.shapes)} shapes leave {n_training} training categories, "
                f"fewer than max_objects={self.max_objects}; give more words or fewer objects"
            )
        if not 0.0 <= self.partial_visibility <= 1.0:
            raise InputError(f"partial_visibility is a probability (0..1), got {self.partial_visibility}")
        if self.jpeg_quality is not None and not (len(self.jpeg_quality) == 2 and 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100):
            raise InputError(f"jpeg_quality is a range [low, high] within 1..100, got {self.jpeg_quality}")
        if self.n_frames < 1 or min(self.height, self.width) < 16:
            raise InputError("need n_frames >= 1 and frames of at least 16x16 pixels")


@dataclass(frozen=True)
class SyntheticObject:
    name: str  # "<colour> <shape>"
    masks: np.ndarray  # bool [T, H, W], what is visible after occlusion


@dataclass(frozen=True)
class SyntheticVideo:
    video_id: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    objects: tuple[SyntheticObject, ...]


@dataclass(frozen=True)
class AnomalyTestVideo:
    """Normal frames, then ``anomaly_type`` appears in some frames only (the anomaly)."""

    video_id: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    anomaly_type: str
    frame_labels: np.ndarray  # bool [T], the anomaly is visible
    masks: np.ndarray  # bool [T, H, W], the anomaly's pixels
    novel_composition: bool  # anomaly_type's colour and shape never appear together in training
    normal_categories: tuple[str, ...] = field(default=())


def category_name(colour: str, shape: str) -> str:
    return f"{colour} {shape}"


def held_out_categories(config: ShapesConfig) -> list[str]:
    """One combination per colour, on a diagonal, so every word still appears in training: colour i
    gets shape (3i + 1) mod n, or (i + 1) mod n when 3 divides n (then 3i + 1 would repeat shapes)."""
    n_shapes = len(config.shapes)
    step = 3 if math.gcd(3, n_shapes) == 1 else 1
    return [category_name(c, config.shapes[(i * step + 1) % n_shapes]) for i, c in enumerate(config.colours)]


def training_categories(config: ShapesConfig) -> list[str]:
    held_out = set(held_out_categories(config)) if config.hold_out else set()
    every = [category_name(c, s) for c in config.colours for s in config.shapes]
    return [name for name in every if name not in held_out]


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dim, low-saturation texture (smooth noise + stripes) so the shapes' colours stand out."""
    coarse = rng.uniform(0.0, 1.0, size=(height // 8 + 2, width // 8 + 2))
    noise = np.kron(coarse, np.ones((8, 8)))[:height, :width]  # [H, W], blocky noise
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 16)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    grey = 70 + 40 * noise + 25 * stripes  # [H, W], 70..135
    tint = rng.uniform(-8, 8, size=3)
    return np.clip(grey[..., None] + tint, 0, 255)  # float [H, W, 3]


@dataclass(frozen=True)
class _Track:
    """An object's path: centre (y, x) per frame, bouncing off the frame's edges."""

    name: str
    radius: float
    centres: np.ndarray  # float [T, 2]


def _random_track(rng: np.random.Generator, config: ShapesConfig, name: str) -> _Track:
    side = min(config.height, config.width)
    radius = rng.uniform(config.min_radius, config.max_radius) * side
    limits = np.array([config.height - 1 - radius, config.width - 1 - radius])
    position = rng.uniform([radius, radius], limits)
    velocity = rng.uniform(-1, 1, size=2) * config.max_speed * side
    centres = np.empty((config.n_frames, 2))
    for t in range(config.n_frames):
        centres[t] = position
        position = position + velocity
        for axis in range(2):  # reflect off the edges
            if not radius <= position[axis] <= limits[axis]:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], radius, limits[axis])
    return _Track(name=name, radius=radius, centres=centres)


def _render(
    rng: np.random.Generator, config: ShapesConfig, tracks: list[_Track], visible: list[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw tracks in order (later ones on top). ``visible[k]`` is bool [T]: frames where track k exists.

    Returns frames uint8 [T, H, W, 3] and per-track masks bool [T, H, W] of what stays visible.
    """
    height, width, n_frames = config.height, config.width, config.n_frames
    background = _background(rng, height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = np.repeat(background[None], n_frames, axis=0)  # float [T, H, W, 3]
    masks = [np.zeros((n_frames, height, width), dtype=bool) for _ in tracks]
    for k, track in enumerate(tracks):
        colour_word, shape_word = track.name.split(" ", 1)
        colour = np.array(COLOURS[colour_word], dtype=np.float64)
        for t in np.flatnonzero(visible[k]):
            cy, cx = track.centres[t]
            drawn = SHAPES[shape_word](yy - cy, xx - cx, track.radius)  # bool [H, W]
            frames[t][drawn] = colour
            masks[k][t] = drawn
            for earlier in masks[:k]:  # occlusion: what is drawn on top hides what is below
                earlier[t] &= ~drawn
    return np.round(frames).astype(np.uint8), masks


def _rng(config: ShapesConfig, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, stream, index])


def render_training_video(config: ShapesConfig, index: int) -> SyntheticVideo:
    """Training video ``index``: 1..max_objects distinct training categories moving about, some of
    them visible in part of the frames only (``partial_visibility``)."""
    rng = _rng(config, stream=0, index=index)
    categories = training_categories(config)
    n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    names = [categories[i] for i in rng.choice(len(categories), size=n_objects, replace=False)]
    tracks = [_random_track(rng, config, name) for name in names]
    visible = [_visible_frames(rng, config) for _ in tracks]
    frames, masks = _render(rng, config, tracks, visible)
    if config.jpeg_quality is not None:
        frames = through_jpeg(frames, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    objects = tuple(SyntheticObject(name=n, masks=m) for n, m in zip(names, masks))
    return SyntheticVideo(video_id=f"shapes_{index:05d}", frames=frames, objects=objects)


def through_jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> the same frames encoded as JPEG at `quality` and decoded again."""
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        out[t] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


def _visible_frames(rng: np.random.Generator, config: ShapesConfig) -> np.ndarray:
    """bool [T]: every frame, or (with probability partial_visibility) a run of 1/4..all of them."""
    n = config.n_frames
    if rng.random() >= config.partial_visibility:
        return np.ones(n, dtype=bool)
    length = int(rng.integers(max(1, n // 4), n + 1))
    start = int(rng.integers(0, n - length + 1))
    visible = np.zeros(n, dtype=bool)
    visible[start : start + length] = True
    return visible


def generate_training_videos(config: ShapesConfig) -> list[SyntheticVideo]:
    return [render_training_video(config, i) for i in range(config.n_videos)]


def shapes_seg_dataset(config: ShapesConfig, *, name: str = "shapes") -> ArraySegDataset:
    """The training videos as an in-memory SegDataset, ready for the ExposureSampler."""
    samples = [
        SegSample(
            sample_id=video.video_id,
            frame_indices=tuple(range(len(video.frames))),
            frames=video.frames,
            objects=tuple(SegObject(name=obj.name, masks=obj.masks) for obj in video.objects)
            + (_word_objects(video) if config.word_objects else ()),
        )
        for video in generate_training_videos(config)
    ]
    return ArraySegDataset(samples, name=name)


def _word_objects(video: SyntheticVideo) -> tuple[SegObject, ...]:
    """One object per colour or shape word of the video's objects, its mask every pixel of the objects
    whose name holds that word (ShapesConfig.word_objects)."""
    masks: dict[str, np.ndarray] = {}
    for obj in video.objects:
        for word in obj.name.split():
            masks[word] = masks[word] | obj.masks if word in masks else obj.masks
    return tuple(SegObject(name=word, masks=m) for word, m in masks.items())


def _anomaly_window(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """bool [T]: a contiguous run of frames, never the first frame, covering 1/4..1/2 of the clip."""
    length = int(rng.integers(max(1, n_frames // 4), max(2, n_frames // 2) + 1))
    length = min(length, n_frames - 1)
    start = int(rng.integers(1, n_frames - length + 1))
    window = np.zeros(n_frames, dtype=bool)
    window[start : start + length] = True
    return window


def render_anomaly_video(config: ShapesConfig, index: int, *, novel: bool) -> AnomalyTestVideo:
    """Held-out test video ``index``: normal training categories throughout, and one anomaly category
    that appears in some frames only, drawn on top (never occluded).

    ``novel=True`` picks the anomaly among ``held_out_categories`` (words seen in training, never in
    that combination); ``novel=False`` among training categories absent from the normal objects.
    Needs ``config.n_frames >= 2``.
    """
    if config.n_frames < 2:
        raise InputError("an anomaly test video needs at least 2 frames (normal ones, then the anomaly)")
    rng = _rng(config, stream=1 if novel else 2, index=index)
    categories = training_categories(config)
    n_normal = int(rng.integers(config.min_objects, config.max_objects + 1))
    normal = [categories[i] for i in rng.choice(len(categories), size=n_normal, replace=False)]
    candidates = held_out_categories(config) if novel else [c for c in categories if c not in normal]
    anomaly = candidates[int(rng.integers(len(candidates)))]
    tracks = [_random_track(rng, config, name) for name in [*normal, anomaly]]
    window = _anomaly_window(rng, config.n_frames)
    visible = [np.ones(config.n_frames, dtype=bool)] * n_normal + [window]
    frames, masks = _render(rng, config, tracks, visible)
    return AnomalyTestVideo(
        video_id=f"shapes_anomaly_{'novel' if novel else 'seen'}_{index:05d}",
        frames=frames,
        anomaly_type=anomaly,
        frame_labels=masks[-1].reshape(config.n_frames, -1).any(axis=1),
        masks=masks[-1],
        novel_composition=novel,
        normal_categories=tuple(normal),
    )


def disjoint_anomaly_videos(
    config: ShapesConfig, n_videos: int, *, novel: Sequence[bool] = (False,), max_types: int | None = None
) -> list[AnomalyTestVideo]:
    """`n_videos` anomaly test videos in which no video's normal shapes are any video's anomaly, so a
    whole set can be scanned with one list of anomaly types; video k is novel iff novel[k % len(novel)].
    ``max_types`` caps how many distinct anomaly types of each kind (seen / novel) the set uses (the
    first ones drawn), which keeps the list of names a scan looks for short."""
    picked: list[AnomalyTestVideo] = []
    anomalies: set[str] = set()
    normals: set[str] = set()
    types_by_kind: dict[bool, set[str]] = {False: set(), True: set()}  # anomaly types picked, by novelty
    index = 0
    while len(picked) < n_videos:
        if index >= 1000 * n_videos:
            raise InputError(f"could not find {n_videos} anomaly videos with disjoint normal and anomaly shapes")
        want_novel = novel[len(picked) % len(novel)]
        video = render_anomaly_video(config, index, novel=want_novel)
        index += 1
        if video.anomaly_type in normals or anomalies & set(video.normal_categories):
            continue
        of_kind = types_by_kind[want_novel]
        if max_types is not None and len(of_kind) >= max_types and video.anomaly_type not in of_kind:
            continue
        picked.append(video)
        anomalies.add(video.anomaly_type)
        of_kind.add(video.anomaly_type)
        normals.update(video.normal_categories)
    return picked
