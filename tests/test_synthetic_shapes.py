"""The synthetic shapes dataset: determinism, vocabulary split, masks that match the pixels."""

import dataclasses
import itertools

import numpy as np
import pytest
from PIL import Image
from seg_layouts import write_vos_layout

from lavida_core.errors import InputError
from lavida_core.training.synthetic_shapes import (
    COLOURS,
    SHAPES,
    ShapesConfig,
    held_out_categories,
    render_anomaly_video,
    render_training_video,
    shapes_seg_dataset,
    training_categories,
)

CONFIG = ShapesConfig(n_videos=16, n_frames=10, height=48, width=64, seed=3)


def test_same_seed_and_index_give_the_same_video_and_another_seed_does_not():
    a, b = render_training_video(CONFIG, 5), render_training_video(CONFIG, 5)
    assert np.array_equal(a.frames, b.frames)
    assert [o.name for o in a.objects] == [o.name for o in b.objects]
    other = render_training_video(ShapesConfig(n_videos=16, n_frames=10, height=48, width=64, seed=4), 5)
    assert not np.array_equal(a.frames, other.frames)
    assert not np.array_equal(a.frames, render_training_video(CONFIG, 6).frames)


def test_held_out_combinations_use_only_words_seen_in_training():
    train, held_out = training_categories(CONFIG), held_out_categories(CONFIG)
    every = {f"{c} {s}" for c in COLOURS for s in SHAPES}
    assert set(train) | set(held_out) == every and not set(train) & set(held_out)
    assert len(held_out) == len(COLOURS)
    words_in_training = {w for name in train for w in name.split(" ")}
    assert all(set(name.split(" ")) <= words_in_training for name in held_out)
    assert len({name.split(" ")[1] for name in held_out}) > 1  # not one shape held out for every colour


def test_a_dataset_that_holds_nothing_out_draws_the_held_out_combinations_too():
    """hold_out=False is for a grounding stage's own data (the stand-in for pretrained encoders)."""
    every = dataclasses.replace(CONFIG, hold_out=False, n_videos=40)
    assert set(training_categories(every)) == {f"{c} {s}" for c in COLOURS for s in SHAPES}
    assert held_out_categories(every) == held_out_categories(CONFIG)  # the same combinations are still named novel
    drawn = {o.name for i in range(every.n_videos) for o in render_training_video(every, i).objects}
    assert drawn & set(held_out_categories(CONFIG))


def test_training_videos_hold_distinct_training_categories_with_matching_pixels():
    train = set(training_categories(CONFIG))
    for index in range(CONFIG.n_videos):
        video = render_training_video(CONFIG, index)
        assert video.frames.shape == (10, 48, 64, 3) and video.frames.dtype == np.uint8
        names = [o.name for o in video.objects]
        assert CONFIG.min_objects <= len(names) <= CONFIG.max_objects and len(set(names)) == len(names)
        assert set(names) <= train
        union = np.zeros(video.frames.shape[:3], dtype=int)
        for obj in video.objects:
            assert obj.masks.shape == video.frames.shape[:3] and obj.masks.dtype == bool
            union += obj.masks
            colour = np.array(COLOURS[obj.name.split(" ")[0]])
            assert (video.frames[obj.masks] == colour).all()  # every masked pixel shows the object
        assert union.max() <= 1  # visible masks never overlap (occlusion)
        top = np.flatnonzero(video.objects[-1].masks.any(axis=(1, 2)))  # nothing hides the top object:
        assert len(top) and (np.diff(top) == 1).all()  # it shows in one run of frames (enters / leaves)


def test_partial_visibility_makes_objects_enter_and_leave():
    def runs(config):
        lengths = []
        for index in range(config.n_videos):
            top = render_training_video(config, index).objects[-1]
            lengths.append(int(top.masks.any(axis=(1, 2)).sum()))
        return np.array(lengths)

    always = runs(ShapesConfig(n_videos=16, n_frames=10, seed=3, partial_visibility=0.0))
    assert (always == 10).all()
    some = runs(ShapesConfig(n_videos=40, n_frames=10, seed=3, partial_visibility=0.5))
    assert 0.2 < (some < 10).mean() < 0.8 and some.min() >= 10 // 4
    with pytest.raises(InputError, match="partial_visibility"):
        ShapesConfig(partial_visibility=1.5)


def test_objects_move():
    moved = 0
    for index in range(CONFIG.n_videos):
        for obj in render_training_video(CONFIG, index).objects:
            ys, xs = np.nonzero(obj.masks[0])
            ye, xe = np.nonzero(obj.masks[-1])
            if len(ys) and len(ye):
                moved += np.hypot(ys.mean() - ye.mean(), xs.mean() - xe.mean()) > 1.0
    assert moved >= CONFIG.n_videos  # most of the ~2 objects per video travel more than a pixel


def test_shapes_are_distinct_and_about_the_expected_size():
    yy, xx = np.mgrid[-20:21, -20:21].astype(float)
    masks = {name: fn(yy, xx, 15.0) for name, fn in SHAPES.items()}
    for a, b in itertools.combinations(masks, 2):
        assert (masks[a] != masks[b]).sum() > 20, (a, b)
    assert masks["circle"].sum() == pytest.approx(np.pi * 15**2, rel=0.05)
    for name, mask in masks.items():
        assert 0.1 * np.pi * 15**2 < mask.sum() <= np.pi * 15**2 * 1.05, name
        assert mask[20, 20] or name == "ring"


@pytest.mark.parametrize("novel", [True, False])
def test_anomaly_videos_show_the_anomaly_in_some_frames_only(novel):
    held_out, train = set(held_out_categories(CONFIG)), set(training_categories(CONFIG))
    for index in range(12):
        video = render_anomaly_video(CONFIG, index, novel=novel)
        labels = video.frame_labels
        assert labels.dtype == bool and labels.shape == (CONFIG.n_frames,)
        assert not labels[0] and labels.any() and not labels.all()
        run = np.flatnonzero(labels)
        assert (np.diff(run) == 1).all()  # one contiguous appearance
        assert np.array_equal(video.masks.any(axis=(1, 2)), labels)
        colour = np.array(COLOURS[video.anomaly_type.split(" ")[0]])
        assert (video.frames[video.masks] == colour).all()
        assert video.novel_composition == novel
        assert set(video.normal_categories) <= train
        if novel:
            assert video.anomaly_type in held_out
        else:
            assert video.anomaly_type in train and video.anomaly_type not in video.normal_categories


def test_anomaly_video_ids_and_content_differ_between_splits():
    seen, novel = render_anomaly_video(CONFIG, 0, novel=False), render_anomaly_video(CONFIG, 0, novel=True)
    assert seen.video_id != novel.video_id and not np.array_equal(seen.frames, novel.frames)


def test_vos_layout_writes_palette_masks(tmp_path):
    video = render_training_video(CONFIG, 0)
    root = write_vos_layout([video], tmp_path)
    png = Image.open(root / "Annotations" / video.video_id / "00000.png")
    ids = np.asarray(png)
    assert png.mode == "P"
    for k, obj in enumerate(video.objects, start=1):
        assert np.array_equal(ids == k, obj.masks[0])


def test_bad_configs_are_input_errors():
    with pytest.raises(InputError, match="unknown colour or shape"):
        ShapesConfig(colours=("red", "mauve"))
    with pytest.raises(InputError, match="min_objects"):
        ShapesConfig(min_objects=3, max_objects=2)
    with pytest.raises(InputError, match="at least 2 frames"):
        render_anomaly_video(ShapesConfig(n_frames=1), 0, novel=True)


def test_training_videos_as_a_seg_dataset():
    config = ShapesConfig(n_videos=3, n_frames=4, height=32, width=32)
    dataset = shapes_seg_dataset(config, name="shapes")
    assert dataset.name == "shapes" and len(dataset) == 3
    video = render_training_video(config, 1)
    assert dataset.info(1).names == tuple(o.name for o in video.objects)
    sample = dataset.load(1, [2, 3])
    assert np.array_equal(sample.frames, video.frames[2:4])
    assert np.array_equal(sample.objects[0].masks, video.objects[0].masks[2:4])


def test_word_objects_add_one_object_per_word_covering_every_object_that_holds_it():
    words = dict(colours=("red", "blue", "green"), shapes=("circle", "square"), min_objects=2, max_objects=2)
    plain = shapes_seg_dataset(ShapesConfig(n_videos=6, n_frames=4, height=32, width=32, **words))
    worded = shapes_seg_dataset(ShapesConfig(n_videos=6, n_frames=4, height=32, width=32, word_objects=True, **words))
    shared = 0
    for i in range(6):
        names = plain.info(i).names
        expected = tuple(dict.fromkeys(w for name in names for w in name.split()))
        assert worded.info(i).names == names + expected
        sample = worded.load(i, [0, 1, 2, 3])
        by_name = {obj.name: obj.masks for obj in sample.objects}
        for word in expected:
            union = np.logical_or.reduce([by_name[n] for n in names if word in n.split()])
            assert np.array_equal(by_name[word], union)
            shared += sum(word in n.split() for n in names) > 1
    assert shared > 0  # some video holds two objects with a word in common: its word mask joins both
    video = render_anomaly_video(ShapesConfig(word_objects=True, **words), 0, novel=True)
    assert video.anomaly_type == render_anomaly_video(ShapesConfig(**words), 0, novel=True).anomaly_type


def test_disjoint_anomaly_videos_never_show_one_video_s_anomaly_as_another_s_normal():
    from lavida_core.training.synthetic_shapes import ShapesConfig, disjoint_anomaly_videos

    videos = disjoint_anomaly_videos(ShapesConfig(n_frames=8, seed=3), 10, novel=(False, True))
    anomalies = {v.anomaly_type for v in videos}
    normals = {name for v in videos for name in v.normal_categories}
    assert len(videos) == 10 and not anomalies & normals
    assert [v.novel_composition for v in videos] == [False, True] * 5


def test_max_types_caps_the_distinct_anomaly_types_of_each_kind():
    from lavida_core.training.synthetic_shapes import disjoint_anomaly_videos

    config = ShapesConfig(n_frames=8, seed=7)
    videos = disjoint_anomaly_videos(config, 12, novel=(False, True), max_types=2)
    seen = {v.anomaly_type for v in videos if not v.novel_composition}
    novel = {v.anomaly_type for v in videos if v.novel_composition}
    assert len(videos) == 12 and len(seen) == 2 and len(novel) == 2
    normals = {name for v in videos for name in v.normal_categories}
    assert not normals & (seen | novel)
    assert len({v.anomaly_type for v in disjoint_anomaly_videos(config, 12)}) > 2  # no cap by default


def test_too_few_words_for_the_objects_per_video_is_a_clear_error():
    with pytest.raises(InputError, match="fewer than max_objects=3"):
        ShapesConfig(colours=("red", "blue"), shapes=("circle", "ring"))  # 4 combinations, 2 held out


def test_jpeg_quality_degrades_training_frames_like_a_codec_and_keeps_masks_exact():
    pristine = ShapesConfig(n_videos=2, seed=4)
    coded = ShapesConfig(n_videos=2, seed=4, jpeg_quality=(40, 60))
    a, b = render_training_video(pristine, 1), render_training_video(coded, 1)
    assert [o.name for o in a.objects] == [o.name for o in b.objects]
    assert all(np.array_equal(x.masks, y.masks) for x, y in zip(a.objects, b.objects))
    error = np.abs(a.frames.astype(int) - b.frames.astype(int))
    assert 0.5 < error.mean() < 20  # changed, but still the same picture
    assert np.array_equal(b.frames, render_training_video(coded, 1).frames)  # deterministic
    with pytest.raises(InputError, match="jpeg_quality"):
        ShapesConfig(jpeg_quality=(90, 50))
