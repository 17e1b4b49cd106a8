"""Round trips of lavida_core.rle through pycocotools' own encoder/decoder."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from lavida_core.errors import InputError
from lavida_core.rle import decode_rle, encode_rle, encode_rles, join_counts, split_counts


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_round_trip(mask):
    rle = encode_rle(mask)
    if not mask.any():
        assert rle is None
        assert not decode_rle(rle, shape=mask.shape).any()
    else:
        assert rle["size"] == [mask.shape[0], mask.shape[1]]
        assert isinstance(rle["counts"], str)
        np.testing.assert_array_equal(decode_rle(rle), mask)


@settings(max_examples=30, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(0, 5), st.integers(1, 24), st.integers(1, 24))))
def test_batch_matches_single(masks):
    assert encode_rles(masks) == [encode_rle(m) for m in masks]


def test_pycocotools_reads_counts_string_as_is():
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:20, 5:40] = True
    rle = encode_rle(mask)
    # pycocotools.mask.decode accepts the stored dict unchanged (counts as str).
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"]})
    assert decoded.shape == (48, 64)
    np.testing.assert_array_equal(decoded.astype(bool), mask)
    assert mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}) == 350


def test_non_square_orientation_is_kept():
    mask = np.zeros((3, 7), dtype=np.uint8)
    mask[0, 6] = 1
    decoded = decode_rle(encode_rle(mask))
    assert decoded.shape == (3, 7) and decoded[0, 6] and decoded.sum() == 1


def test_bad_input_is_an_input_error():
    with pytest.raises(InputError):
        encode_rles(np.zeros((4, 4), dtype=bool))
    with pytest.raises(InputError):
        decode_rle(None)


def test_split_counts_inverts_join_counts():
    masks = np.zeros((3, 5, 5), dtype=bool)
    masks[1, 2, 2] = True
    assert [c is None for c in split_counts(join_counts(encode_rles(masks)), 3)] == [True, False, True]
    assert split_counts(join_counts(encode_rles(masks[:1])), 1) == [None]
    with pytest.raises(InputError, match="2 masks for 3 frames"):
        split_counts("a\nb", 3)
