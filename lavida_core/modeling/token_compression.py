"""LAVIDA's two gradient-free token-compression steps (paper contribution iii).

1. `temporal_keep_mask`: before the Qwen2-VL vision blocks, drop the 2x2 merge groups of frames 2..T
   whose patch embeddings barely differ from frame 1 (static background).
2. `reverse_attention_sampling`: on the visual tokens entering the LLM, keep the highest-density
   tokens (local-outlier-factor style) as cluster centres and give each centre the "reverse
   attention" mean of its cluster, where dissimilar (rare, anomalous) tokens weigh most. As in the
   reference, every token joins its nearest centre, so of two identical centres the later one can be
   left with an empty cluster, whose feature is then the mean of all tokens (`centres_own_cluster`
   keeps each centre in its own cluster instead).

Both are pure tensor functions. The model runs the first under no_grad (it only picks tokens) and the
second with gradients, which reach a vision tower being trained through the merged means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def temporal_keep_mask(patch_embeds: torch.Tensor, grid_thw: tuple[int, int, int], *, merge_size: int, threshold: float) -> torch.Tensor:
    """Which patches of one clip enter the vision blocks.

    patch_embeds: [t*h*w, C] in Qwen2-VL's order (temporal patch, then merge group, then the
    merge_size**2 patches of the group). Returns bool [t*h*w]. A merge group is static when the mean
    over frames 2..t of (1 - cos(group_k, group_1)) is under `threshold`; static groups are dropped
    from frames 2..t and always kept in frame 1.
    """
    t, h, w = grid_thw
    group = merge_size * merge_size
    n_groups = h * w // group
    keep = torch.ones(t, n_groups, dtype=torch.bool, device=patch_embeds.device)
    if t > 1:
        groups = patch_embeds.float().reshape(t, n_groups, -1)  # [t, G, group*C]
        diff = 1.0 - F.cosine_similarity(groups, groups[:1].expand_as(groups), dim=-1)  # [t, G]
        static = diff[1:].mean(dim=0) < threshold  # [G]
        keep[1:, static] = False
    return keep.repeat_interleave(group, dim=1).reshape(-1)


def lof_density(tokens: torch.Tensor, k: int) -> torch.Tensor:
    """Local reachability density of each token among its k nearest neighbours. tokens: [L, C] -> [L]."""
    L, C = tokens.shape
    dist = torch.cdist(tokens, tokens) / C**0.5  # [L, L]
    nearest_dist, nearest_idx = torch.topk(dist, k=k + 1, dim=-1, largest=False)
    neighbours = nearest_idx[:, 1:]  # [L, k], self excluded
    k_distance = nearest_dist[:, -1]  # [L]
    reach = torch.maximum(dist, k_distance.unsqueeze(0).expand(L, L))  # reach(p, o) = max(d(p,o), kdist(o))
    reach_to_neighbours = torch.gather(reach, dim=1, index=neighbours)  # [L, k]
    return k / (reach_to_neighbours.sum(dim=1) + 1e-10)


def reverse_attention_sampling(
    tokens: torch.Tensor, *, ratio: float, k: int, centres_own_cluster: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compress [L, C] visual tokens to R = max(1, int(L * ratio)) (ratio >= 1: the identity).

    Returns (merged [R, C] in tokens' dtype, centre indices [R] in increasing order). Each token joins
    its nearest centre, the first on ties; a centre's new feature is the
    softmax(-centre . token / sqrt(C))-weighted mean of its cluster, and the plain mean of all L tokens
    when its cluster is empty (a twin centre took its tokens: the reference's softmax over an all-masked
    row). centres_own_cluster: every centre joins its own cluster first, so none is empty.
    """
    L, C = tokens.shape
    R = max(1, int(L * ratio))
    if R >= L:
        return tokens, torch.arange(L, device=tokens.device)
    x = tokens.float()
    density = lof_density(x, k=min(k, L - 1))
    centre_idx = torch.sort(torch.topk(density, k=R, largest=True).indices).values  # [R]
    centres = x[centre_idx]  # [R, C]
    assignment = torch.argmin(torch.cdist(x, centres), dim=1)  # [L]
    if centres_own_cluster:
        assignment[centre_idx] = torch.arange(R, device=x.device)
    members = F.one_hot(assignment, R).t().bool()  # [R, L]
    empty = ~members.any(dim=1, keepdim=True)  # [R, 1]
    scores = (-(centres @ x.t()) / C**0.5).masked_fill(~members, float("-inf"))  # [R, L]
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=1)  # [R, L]; an empty row: uniform
    return (weights @ x).to(tokens.dtype), centre_idx
