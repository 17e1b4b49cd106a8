"""The Anomaly Exposure Sampler's label/target rules, as properties over many seeded draws."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lavida_core.errors import InputError
from lavida_core.training.exposure_sampler import ExposureSampler, SamplerConfig, TrainingSample, choose_frames, clip_starts
from lavida_core.training.seg_datasets import ArraySegDataset, SegObject, SegSample
from lavida_core.training.synthetic_shapes import ShapesConfig, shapes_seg_dataset


def _video_dataset(n_videos=24, n_frames=12, name="shapes") -> ArraySegDataset:
    config = ShapesConfig(n_videos=n_videos, n_frames=n_frames, height=32, width=32, max_objects=3, seed=7)
    return shapes_seg_dataset(config, name=name)


def _image_dataset(name="images") -> ArraySegDataset:
    """Still images (one-frame samples) with 2 instances of one category in some of them."""
    rng = np.random.default_rng(3)
    samples = []
    for i in range(10):
        masks = np.zeros((3, 1, 16, 16), dtype=bool)
        masks[0, 0, :4, :4] = masks[1, 0, 8:, 8:] = masks[2, 0, 4:8, :] = True
        names = [f"thing{i % 4}", f"thing{i % 4}", f"stuff{i % 3}"]
        objects = tuple(SegObject(n, m) for n, m in zip(names, masks))
        frames = rng.integers(0, 255, size=(1, 16, 16, 3), dtype=np.uint8)
        samples.append(SegSample(sample_id=f"img{i}", frame_indices=(0,), frames=frames, objects=objects))
    return ArraySegDataset(samples, name=name)


VIDEOS = _video_dataset()
IMAGES = _image_dataset()
MIXED = ExposureSampler([VIDEOS, IMAGES], SamplerConfig(ratios={"shapes": 0.7, "images": 0.3}, n_anomalies=5, frames_per_clip=8, seed=11))


def _own_names(sampler: ExposureSampler, sample: TrainingSample) -> set[str]:
    ds = sampler.datasets[sample.dataset]
    index = next(i for i in range(len(ds)) if ds.info(i).sample_id == sample.sample_id)
    return set(ds.info(index).names)


def _check_rules(sampler: ExposureSampler, sample: TrainingSample) -> None:
    own = _own_names(sampler, sample)
    assert sample.anomaly_types, "named types are never empty"
    assert len(set(sample.anomaly_types)) == len(sample.anomaly_types)
    assert sample.target_masks.dtype == bool and sample.target_labels.dtype == bool
    assert sample.target_masks.shape == sample.frames.shape[:3]
    assert sample.frames.dtype == np.uint8
    assert sample.target_masks.any() == sample.is_anomalous, "target empty iff normal"
    assert np.array_equal(sample.target_labels, sample.target_masks.any(axis=(1, 2)))
    named_own = own & set(sample.anomaly_types)
    if sample.is_anomalous:
        assert named_own == set(sample.positives) and named_own, "own names named iff anomalous"
    else:
        assert sample.positives == ()
        assert not named_own, "a normal sample names none of its own categories"


@settings(max_examples=300, deadline=None)
@given(index=st.integers(min_value=0, max_value=2**31))
def test_every_draw_follows_the_label_and_target_rules(index):
    _check_rules(MIXED, MIXED.sample(index))


def test_anomalous_target_is_the_union_of_all_instances_of_the_named_category():
    for index in range(200):
        sample = MIXED.sample(index)
        if sample.dataset == "images" and sample.is_anomalous:
            source = IMAGES.load(int(sample.sample_id[3:]), [0])
            (own,) = sample.positives
            assert np.array_equal(sample.target_masks, source.mask_of(own))


@pytest.mark.parametrize("ratio", [0.5, 0.2, 0.9])
def test_anomalous_share_is_within_tolerance(ratio):
    sampler = ExposureSampler([VIDEOS], SamplerConfig(ratios={"shapes": 1.0}, anomaly_ratio=ratio, n_anomalies=4))
    n = 1500
    share = np.mean([sampler.sample(i).is_anomalous for i in range(n)])
    assert abs(share - ratio) < 4 * np.sqrt(ratio * (1 - ratio) / n)


def test_datasets_are_mixed_by_their_ratios_and_images_are_one_frame_clips():
    n = 1500
    draws = [MIXED.sample(i) for i in range(n)]
    share_images = np.mean([s.dataset == "images" for s in draws])
    assert abs(share_images - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    assert {len(s.frames) for s in draws if s.dataset == "images"} == {1}
    assert {len(s.frames) for s in draws if s.dataset == "shapes"} == {8}


def test_max_names_option_names_exactly_n_anomalies_for_normal_and_anomalous_samples_alike():
    config = SamplerConfig(ratios={"shapes": 0.7, "images": 0.3}, n_anomalies=5, names_per_sample="max", seed=11)
    sampler = ExposureSampler([VIDEOS, IMAGES], config)
    lengths = {(s.dataset, len(s.anomaly_types)) for s in (sampler.sample(i) for i in range(300))}
    # 'images' has 4 + 3 = 7 names: a sample owns 2, so 5 others remain for normal samples
    assert lengths == {("shapes", 5), ("images", 5)}


def test_a_small_vocabulary_gives_fewer_names_but_never_none():
    sampler = ExposureSampler([IMAGES], SamplerConfig(ratios={"images": 1.0}, n_anomalies=30))
    for i in range(200):
        sample = sampler.sample(i)
        assert 1 <= len(sample.anomaly_types) <= 6
        _check_rules(sampler, sample)


def test_same_seed_and_index_give_the_same_sample_and_another_seed_differs():
    a = ExposureSampler([VIDEOS], SamplerConfig(ratios={"shapes": 1.0}, seed=1))
    b = ExposureSampler([VIDEOS], SamplerConfig(ratios={"shapes": 1.0}, seed=1))
    c = ExposureSampler([VIDEOS], SamplerConfig(ratios={"shapes": 1.0}, seed=2))
    for i in range(20):
        x, y = a.sample(i), b.sample(i)
        assert x.anomaly_types == y.anomaly_types and x.frame_indices == y.frame_indices
        assert np.array_equal(x.frames, y.frames) and np.array_equal(x.target_masks, y.target_masks)
    assert [a.sample(i).anomaly_types for i in range(20)] != [c.sample(i).anomaly_types for i in range(20)]
    first = next(iter(a))
    assert first.anomaly_types == a.sample(0).anomaly_types


def test_anomalous_clips_show_the_target_when_it_is_visible_only_in_some_frames():
    n_frames = 40
    frames = np.zeros((n_frames, 8, 8, 3), dtype=np.uint8)
    late = np.zeros((n_frames, 8, 8), dtype=bool)
    late[33:36, 2:4, 2:4] = True  # visible in frames 33..35 only
    samples = [
        SegSample("v0", tuple(range(n_frames)), frames, (SegObject("late bird", late),)),
        SegSample("v1", tuple(range(n_frames)), frames, (SegObject("early worm", late[::-1].copy()),)),
    ]
    config = SamplerConfig(ratios={"v": 1}, anomaly_ratio=1.0, redraw_hidden_targets=True)
    sampler = ExposureSampler([ArraySegDataset(samples, name="v")], config)
    for i in range(50):
        sample = sampler.sample(i)
        assert sample.is_anomalous and sample.target_labels.any()
        assert list(sample.frame_indices) == list(range(sample.frame_indices[0], sample.frame_indices[0] + 8))


def test_choose_frames_spreads_short_videos_and_covers_the_anchor():
    rng = np.random.default_rng(0)
    assert choose_frames(rng, 3, 8) == [0, 0, 1, 1, 1, 1, 2, 2]
    assert choose_frames(rng, 1, 1) == [0]
    for _ in range(100):
        frames = choose_frames(rng, 50, 8, must_include=[20])
        assert 20 in frames and len(frames) == 8 and frames == sorted(frames)


def test_dataset_without_a_ratio_is_an_input_error():
    with pytest.raises(InputError, match="no sampling ratio"):
        ExposureSampler([VIDEOS], SamplerConfig(ratios={"coco": 1.0}))


def test_duplicate_dataset_names_are_an_input_error():
    with pytest.raises(InputError, match="distinct name"):
        ExposureSampler([VIDEOS, _video_dataset()], SamplerConfig(ratios={"shapes": 1.0}))


def test_a_single_category_everywhere_is_an_input_error():
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    mask = np.ones((1, 4, 4), dtype=bool)
    samples = [SegSample(f"s{i}", (0,), frames, (SegObject("cat", mask),)) for i in range(3)]
    with pytest.raises(InputError, match="fewer than two"):
        ExposureSampler([ArraySegDataset(samples, name="one")], SamplerConfig(ratios={"one": 1.0}))


def test_empty_masks_everywhere_fail_anomalous_draws_clearly():
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    empty = np.zeros((1, 4, 4), dtype=bool)
    samples = [SegSample(f"s{i}", (0,), frames, (SegObject(f"c{i}", empty),)) for i in range(3)]
    config = SamplerConfig(ratios={"e": 1.0}, anomaly_ratio=1.0, redraw_hidden_targets=True)
    sampler = ExposureSampler([ArraySegDataset(samples, name="e")], config)
    with pytest.raises(InputError, match="no segmented object"):
        sampler.sample(0)
    as_reference = ExposureSampler([ArraySegDataset(samples, name="e")], SamplerConfig(ratios={"e": 1.0}, anomaly_ratio=1.0))
    assert not as_reference.sample(0).is_anomalous, "the reference makes them normal samples"


def test_bad_config_values_are_input_errors():
    with pytest.raises(InputError):
        SamplerConfig(anomaly_ratio=1.5)
    with pytest.raises(InputError):
        SamplerConfig(n_anomalies=0)


class _UnknownPresence(ArraySegDataset):
    """Like Ref-YouTube-VOS expressions: the index does not say in which frames an object is visible."""

    def info(self, index):
        info = super().info(index)
        objects = tuple(type(o)(name=o.name, present_frames=None) for o in info.objects)
        return type(info)(sample_id=info.sample_id, n_frames=info.n_frames, objects=objects)


def test_anomalous_draws_retry_until_the_target_is_visible_when_presence_is_unknown():
    n_frames = 40
    frames = np.zeros((n_frames, 8, 8, 3), dtype=np.uint8)
    brief = np.zeros((n_frames, 8, 8), dtype=bool)
    brief[30, 2:4, 2:4] = True  # visible in one frame of 40
    samples = [SegSample(f"v{i}", tuple(range(n_frames)), frames, (SegObject(f"obj{i}", brief),)) for i in range(3)]
    dataset = _UnknownPresence(samples, name="ref")
    config = SamplerConfig(ratios={"ref": 1}, anomaly_ratio=1.0, max_attempts=500, redraw_hidden_targets=True)
    sampler = ExposureSampler([dataset], config)
    for i in range(30):
        sample = sampler.sample(i)
        assert sample.is_anomalous and sample.target_labels.sum() == 1
        _check_rules(sampler, sample)


# --- how many names, as the reference draws them (issue 14, item 2) ------------------------------


def _counts(sampler: ExposureSampler, n: int) -> tuple[dict[int, float], dict[int, float]]:
    """Share of each number of names, among anomalous and among normal draws."""
    draws = [sampler.sample(i) for i in range(n)]
    shares = []
    for anomalous in (True, False):
        lengths = np.array([len(d.anomaly_types) for d in draws if d.is_anomalous == anomalous])
        shares.append({int(k): float(np.mean(lengths == k)) for k in np.unique(lengths)})
    return shares[0], shares[1]


def _assert_shares(observed: dict[int, float], expected: dict[int, float], n: int) -> None:
    assert set(observed) == set(expected)
    for k, p in expected.items():
        assert abs(observed[k] - p) < 5 * np.sqrt(p * (1 - p) / n) + 0.01, (k, observed[k], p)


def test_reference_names_one_positive_plus_randint_1_to_max_minus_1_negatives_on_images():
    """12 categories, one per image, max 6: an anomalous prompt names 1 + randint(1, 5) types
    (2..6, each 1/5), a normal one randint(1, 5) (1..5, each 1/5)."""
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    mask = np.ones((1, 4, 4), dtype=bool)
    samples = [SegSample(f"s{i}", (0,), frames, (SegObject(f"c{i % 12}", mask),)) for i in range(24)]
    sampler = ExposureSampler([ArraySegDataset(samples, name="img")], SamplerConfig(ratios={"img": 1.0}, n_anomalies=6))
    anomalous, normal = _counts(sampler, 3000)
    _assert_shares(anomalous, {k: 1 / 5 for k in (2, 3, 4, 5, 6)}, 1500)
    _assert_shares(normal, {k: 1 / 5 for k in (1, 2, 3, 4, 5)}, 1500)


def _two_category_video() -> ArraySegDataset:
    """One 8-frame video: "a" in every frame, "b" in frames 4..7; negatives from a fixed list of 10."""
    frames = np.zeros((8, 6, 6, 3), dtype=np.uint8)
    a, b = np.zeros((8, 6, 6), dtype=bool), np.zeros((8, 6, 6), dtype=bool)
    a[:, :2, :2] = True
    b[4:, 4:, 4:] = True
    video = SegSample("v", tuple(range(8)), frames, (SegObject("a", a), SegObject("b", b)))
    dataset = ArraySegDataset([video], name="vos", positives="frames")
    dataset.categories = tuple("abcdefghij")
    return dataset


def test_reference_vos_positives_are_the_categories_of_one_or_two_random_frames():
    """Clip = the 8 frames. k = randint(1, 2) frames with replacement: only "a" when every pick is
    in frames 0..3: P(n_true = 1) = 1/2 * 1/2 + 1/2 * 1/4 = 3/8, else {a, b} (5/8). With max 4:
    anomalous count = n_true + randint(1, 4 - n_true): P(2) = 3/8 * 1/3 = 1/8, P(3) = 1/8 + 5/8 * 1/2
    = 7/16, P(4) = 7/16; normal count = randint(1, 4 - n_true): P(1) = 7/16, P(2) = 7/16, P(3) = 1/8."""
    dataset = _two_category_video()
    sampler = ExposureSampler([dataset], SamplerConfig(ratios={"vos": 1.0}, n_anomalies=4, frames_per_clip=8))
    anomalous, normal = _counts(sampler, 4000)
    _assert_shares(anomalous, {2: 1 / 8, 3: 7 / 16, 4: 7 / 16}, 2000)
    _assert_shares(normal, {1: 7 / 16, 2: 7 / 16, 3: 1 / 8}, 2000)
    source = dataset.load(0, list(range(8)))
    for i in range(100):
        sample = sampler.sample(i)
        if sample.is_anomalous:
            expected = np.logical_or.reduce([source.mask_of(n) for n in sample.positives])
            assert set(sample.positives) <= {"a", "b"} and np.array_equal(sample.target_masks, expected)
        assert not {"a", "b"} & (set(sample.anomaly_types) - set(sample.positives)), "own names are never negatives"


def test_reference_ref_vos_positives_are_one_or_two_objects_with_one_expression_each():
    """Two objects with two expressions each. k = randint(1, 2) objects with replacement, a random
    expression of each: one expression when k = 1 (1/2), or k = 2 with the same object and the same
    expression (1/2 * 1/2 * 1/2): P(n_true = 1) = 5/8."""
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    masks = np.zeros((2, 1, 4, 4), dtype=bool)
    masks[0, 0, 0, 0] = masks[1, 0, 3, 3] = True
    objects = tuple(SegObject(f"obj{k} says {w}", masks[k]) for k in (0, 1) for w in ("x", "y"))

    class _Keyed(ArraySegDataset):
        def info(self, index):
            info = super().info(index)
            keyed = tuple(type(o)(name=o.name, present_frames=o.present_frames, object_key=o.name[:4]) for o in info.objects)
            return type(info)(sample_id=info.sample_id, n_frames=info.n_frames, objects=keyed)

    keyed = _Keyed([SegSample("v", (0,), frames, objects)], name="refvos", positives="objects")
    keyed.categories = tuple(f"n{i}" for i in range(20))
    sampler = ExposureSampler([keyed], SamplerConfig(ratios={"refvos": 1.0}, anomaly_ratio=1.0))
    n_true = np.array([len(sampler.sample(i).positives) for i in range(2000)])
    assert abs(np.mean(n_true == 1) - 5 / 8) < 5 * np.sqrt(5 / 8 * 3 / 8 / 2000)
    assert set(n_true) == {1, 2}


def test_reference_clips_are_drawn_uniformly_among_back_to_back_windows():
    """Videos of 8, 24 and 7 frames, clips of 8: 1 + 3 + 0 clips (starts 0 | 0, 8, 16 | none; the
    7-frame video is shorter than a clip), so the 24-frame video is drawn 3/4 of the time, each of
    its three clips 1/4 each (1/3 of its draws), and the 7-frame one never."""
    assert list(clip_starts(20, 8)) == [0, 8] and list(clip_starts(7, 8)) == [] and list(clip_starts(1, 1)) == [0]

    def video(name: str, n: int) -> SegSample:
        frames = np.zeros((n, 4, 4, 3), dtype=np.uint8)
        return SegSample(name, tuple(range(n)), frames, (SegObject(f"{name} thing", np.ones((n, 4, 4), dtype=bool)),))

    dataset = ArraySegDataset([video("short8", 8), video("long24", 24), video("tiny7", 7)], name="v")
    sampler = ExposureSampler([dataset], SamplerConfig(ratios={"v": 1.0}, anomaly_ratio=0.0, frames_per_clip=8))
    n = 2000
    draws = [(s.sample_id, s.frame_indices[0]) for s in (sampler.sample(i) for i in range(n))]
    assert {video for video, _ in draws} == {"short8", "long24"}
    starts = [start for video, start in draws if video == "long24"]
    assert abs(len(starts) / n - 3 / 4) < 5 * np.sqrt(3 / 16 / n)
    for start in (0, 8, 16):
        assert abs(starts.count(start) / len(starts) - 1 / 3) < 5 * np.sqrt(2 / 9 / len(starts))


def test_reference_anomalous_draw_whose_clip_hides_the_target_becomes_normal():
    """A 16-frame video (2 clips of 8) whose only object shows in frames 0..7, anomaly_ratio 1: the
    reference makes the draws of the second clip normal, so 1/2 are anomalous; redrawing, all."""
    frames = np.zeros((16, 4, 4, 3), dtype=np.uint8)
    early = np.zeros((16, 4, 4), dtype=bool)
    early[:8] = True
    others = SegSample("w", tuple(range(16)), frames, (SegObject("late", ~early), SegObject("never", early)))
    dataset = ArraySegDataset([SegSample("v", tuple(range(16)), frames, (SegObject("early", early),)), others], name="v")
    reference = ExposureSampler([dataset], SamplerConfig(ratios={"v": 1.0}, anomaly_ratio=1.0))
    draws = [d for d in (reference.sample(i) for i in range(2000)) if d.sample_id == "v"]
    n = len(draws)
    assert abs(np.mean([d.is_anomalous for d in draws]) - 1 / 2) < 5 * np.sqrt(1 / 4 / n)
    assert all(d.is_anomalous == (d.frame_indices[0] == 0) for d in draws)
    assert all("early" not in d.anomaly_types for d in draws if not d.is_anomalous)
    redrawn = ExposureSampler([dataset], SamplerConfig(ratios={"v": 1.0}, anomaly_ratio=1.0, redraw_hidden_targets=True))
    assert all(redrawn.sample(i).is_anomalous for i in range(200))
    assert n > 800


def test_reference_one_rule_picks_among_all_objects_shown_or_not():
    """16 frames (2 clips of 8): "a" in frames 0..7, "b" in 8..15. The reference picks the object
    first (a or b, 1/2 each) and the clip apart (1/2 each): anomalous iff they match, 1/2 of the
    draws at anomaly_ratio 1; a normal draw names neither a nor b."""
    frames = np.zeros((16, 4, 4, 3), dtype=np.uint8)
    a = np.zeros((16, 4, 4), dtype=bool)
    a[:8] = True
    video = SegSample("v", tuple(range(16)), frames, (SegObject("a", a), SegObject("b", ~a)))
    other = SegSample("w", tuple(range(16)), frames, (SegObject("c", a), SegObject("d", ~a)))
    sampler = ExposureSampler([ArraySegDataset([video, other], name="m")], SamplerConfig(ratios={"m": 1.0}, anomaly_ratio=1.0))
    draws = [d for d in (sampler.sample(i) for i in range(2000)) if d.sample_id == "v"]
    assert abs(np.mean([d.is_anomalous for d in draws]) - 1 / 2) < 5 * np.sqrt(1 / 4 / len(draws))
    for d in draws:
        if d.is_anomalous:
            assert d.positives == (("a",) if d.frame_indices[0] == 0 else ("b",))
        else:
            assert not {"a", "b"} & set(d.anomaly_types)


def _one_object_images(names: list[str]) -> ArraySegDataset:
    """One image per name, the object covering its top-left quarter."""
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, :4, :4] = True
    frames = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    return ArraySegDataset([SegSample(n, (0,), frames, (SegObject(n, masks),)) for n in names], name="words")


def test_confusable_negatives_share_a_word_with_the_sample_at_the_asked_rate():
    """Words: red/blue/green x circle/square/cross (9 names). A normal "red circle" image, 1 negative in
    "max" mode: its confusers are the 4 names with "red" or "circle" of the other 8. With p = 0.5 a
    negative is a confuser with 0.5 + 0.5 x 4/8 = 0.75; with p = 0 (the reference) 4/8 = 0.5."""
    names = [f"{c} {s}" for c in ("red", "blue", "green") for s in ("circle", "square", "cross")]
    dataset = _one_object_images(names)
    shares = {}
    for p in (0.0, 0.5, 1.0):
        config = SamplerConfig(ratios={"words": 1.0}, n_anomalies=1, names_per_sample="max", anomaly_ratio=0.0, confusable_negatives=p)
        sampler = ExposureSampler([dataset], config)
        hits = []
        for i in range(3000):
            sample = sampler.sample(i)
            own = set(sample.sample_id.split())
            [negative] = sample.anomaly_types
            hits.append(bool(own & set(negative.split())))
        shares[p] = np.mean(hits)
    assert shares[0.0] == pytest.approx(0.5, abs=0.03) and shares[0.5] == pytest.approx(0.75, abs=0.03) and shares[1.0] == 1.0


def test_confusable_negatives_is_a_probability():
    with pytest.raises(InputError, match="confusable_negatives"):
        SamplerConfig(confusable_negatives=1.5)
