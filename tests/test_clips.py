"""Properties of lavida_core.clips.plan_clips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lavida_core.clips import plan_clips
from lavida_core.errors import InputError


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 16), st.integers(1, 200))
def test_clips_cover_every_sampled_frame_once(n_frames, frames_per_clip, sample_interval):
    clips = plan_clips(n_frames, frames_per_clip, sample_interval)
    joined = np.concatenate(clips) if clips else np.zeros(0, dtype=np.int64)
    # every sample_interval-th frame, each exactly once, in order
    np.testing.assert_array_equal(joined, np.arange(0, n_frames, sample_interval))
    assert all(c.dtype == np.int64 for c in clips)
    # all clips full but the last, which is 1..frames_per_clip long
    assert all(len(c) == frames_per_clip for c in clips[:-1])
    if clips:
        assert 1 <= len(clips[-1]) <= frames_per_clip
        assert clips[-1][-1] < n_frames
    # consecutive clips do not overlap and step by sample_interval inside a clip
    for a, b in zip(clips, clips[1:]):
        assert a[-1] < b[0]
    for c in clips:
        assert np.all(np.diff(c) == sample_interval)


def test_examples():
    assert plan_clips(0, 8, 16) == []
    assert [c.tolist() for c in plan_clips(1, 8, 16)] == [[0]]
    assert [c.tolist() for c in plan_clips(10, 4, 2)] == [[0, 2, 4, 6], [8]]
    assert [c.tolist() for c in plan_clips(9, 3, 1)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


@pytest.mark.parametrize("args", [(-1, 8, 16), (10, 0, 16), (10, 8, 0)])
def test_bad_arguments(args):
    with pytest.raises(InputError):
        plan_clips(*args)
