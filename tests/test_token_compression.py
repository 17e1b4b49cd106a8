"""Token compression on hand-made inputs whose answer is known."""

import torch

from lavida_core.modeling.token_compression import lof_density, reverse_attention_sampling, temporal_keep_mask


def _clip_with_moving_group(t: int, n_groups: int, moving: int, channels: int = 16) -> torch.Tensor:
    """Patch embeddings [t * n_groups * 4, C]: every merge group identical across frames except one."""
    torch.manual_seed(0)
    frame = torch.randn(n_groups, 4, channels)
    frames = frame.unsqueeze(0).repeat(t, 1, 1, 1)  # [t, G, 4, C]
    frames[1:, moving] = torch.randn(t - 1, 4, channels)
    return frames.reshape(-1, channels)


def test_static_background_drops_all_but_the_moving_group_after_frame_one():
    t, groups, moving = 4, 6, 2
    keep = temporal_keep_mask(_clip_with_moving_group(t, groups, moving), (t, 2, 12), merge_size=2, threshold=0.01)
    keep = keep.view(t, groups, 4)
    assert keep[0].all(), "frame 1 is always kept"
    assert keep[1:, moving].all(), "the moving group is kept in every frame"
    others = [g for g in range(groups) if g != moving]
    assert not keep[1:, others].any(), "static groups are dropped from frames 2..T"


def test_single_temporal_patch_keeps_everything():
    keep = temporal_keep_mask(torch.randn(24, 8), (1, 4, 6), merge_size=2, threshold=0.5)
    assert keep.all()


def test_threshold_below_zero_keeps_everything():
    keep = temporal_keep_mask(_clip_with_moving_group(3, 4, 0), (3, 4, 4), merge_size=2, threshold=-1.0)
    assert keep.all()


def test_planted_outlier_has_the_lowest_density_and_is_never_a_centre():
    torch.manual_seed(1)
    tokens = torch.randn(31, 8) * 0.1
    outlier = torch.full((1, 8), 5.0)
    tokens = torch.cat([tokens[:17], outlier, tokens[17:]])  # outlier at index 17
    density = lof_density(tokens, k=8)
    assert int(density.argmin()) == 17
    _, centres = reverse_attention_sampling(tokens, ratio=0.5, k=8)
    assert 17 not in centres.tolist()
    assert len(centres) == 16 and torch.all(centres[1:] > centres[:-1]), "R centres in original order"


def test_reverse_attention_weighs_the_dissimilar_token_most():
    # Cluster of identical tokens plus one token pointing the other way, all closest to one centre.
    base = torch.tensor([[1.0, 0.0]])
    tokens = torch.cat([base.repeat(9, 1), torch.tensor([[-0.5, 0.0]])])
    merged, centres = reverse_attention_sampling(tokens, ratio=0.1, k=3)  # R = 1
    assert len(centres) == 1
    weights_mean = tokens.mean(0)
    # softmax(-c.x/sqrt(C)): the opposite token gets weight e^{0.35} vs e^{-0.71}: the merged feature is
    # pulled further towards it than the plain mean is.
    assert merged[0, 0] < weights_mean[0]


def test_duplicated_tokens_merge_into_their_value_when_centres_keep_their_own_cluster():
    token = torch.randn(1, 6)
    tokens = torch.cat([token.repeat(5, 1), token.repeat(5, 1) + 10.0])
    merged, centres = reverse_attention_sampling(tokens, ratio=0.2, k=4, centres_own_cluster=True)  # R = 2
    assert len(centres) == 2
    values = sorted(merged[:, 0].tolist())
    assert abs(values[0] - token[0, 0].item()) < 1e-5 and abs(values[1] - token[0, 0].item() - 10.0) < 1e-5


def _twin_centres() -> torch.Tensor:
    """t0 = t1 = (1, 0), t2 = (3, 0), t3 = (1, 3). With k = 1 the twins have density k / (0 + 1e-10)
    (their nearest neighbour is at distance 0), t2 1 / (2 / sqrt 2) and t3 1 / (3 / sqrt 2): with
    R = int(4 x 0.5) = 2 the centres are t0 and t1. Every token is equally near both and joins the
    first, t0."""
    return torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 0.0], [1.0, 3.0]])


def test_a_twin_centre_left_with_an_empty_cluster_becomes_the_mean_of_all_tokens():
    tokens = _twin_centres()
    merged, centres = reverse_attention_sampling(tokens, ratio=0.5, k=1)
    assert centres.tolist() == [0, 1]
    # t1's cluster is empty: the reference's softmax over a fully masked row is uniform over all 4 tokens
    assert torch.allclose(merged[1], torch.tensor([(1 + 1 + 3 + 1) / 4, 3 / 4]))
    # t0's cluster is all 4 tokens, weighted by softmax(-t0 . x / sqrt 2) = softmax(-[1, 1, 3, 1] / sqrt 2)
    w = torch.softmax(-torch.tensor([1.0, 1.0, 3.0, 1.0]) / 2**0.5, dim=0)
    assert torch.allclose(merged[0], w @ tokens)


def test_centres_own_cluster_option_keeps_the_twin_to_itself():
    tokens = _twin_centres()
    merged, centres = reverse_attention_sampling(tokens, ratio=0.5, k=1, centres_own_cluster=True)
    assert centres.tolist() == [0, 1]
    assert torch.allclose(merged[1], tokens[1])  # alone in its cluster
    w = torch.softmax(-torch.tensor([1.0, 3.0, 1.0]) / 2**0.5, dim=0)  # t0, t2, t3
    assert torch.allclose(merged[0], w @ tokens[[0, 2, 3]])


def test_ratio_one_is_the_identity_even_with_duplicates():
    tokens = torch.cat([torch.ones(3, 4), torch.randn(5, 4)])
    merged, centres = reverse_attention_sampling(tokens, ratio=1.0, k=8)
    assert torch.equal(merged, tokens) and centres.tolist() == list(range(8))


def test_ratio_keeps_int_of_length_times_ratio_and_at_least_one():
    for length, ratio, expected in ((10, 0.5, 5), (7, 0.5, 3), (3, 0.1, 1), (1, 0.5, 1)):
        merged, centres = reverse_attention_sampling(torch.randn(length, 4), ratio=ratio, k=8)
        assert merged.shape == (expected, 4) and len(centres) == expected
