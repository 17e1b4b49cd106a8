"""LAVIDA's training loss: SAM2's multi-mask losses plus the language model's cross-entropy.

    terms = lavida_loss(
        mask_logits=...,          # [N, M, H, W]  M candidate masks per frame (M=3 multimask)
        pred_ious=...,            # [N, M]        the decoder's predicted IoU per candidate
        object_score_logits=...,  # [N, 1]        the frame's "object present" logit (= anomaly score)
        target_masks=...,         # [N, H, W]     bool/0-1, the anomaly's pixels (empty on normal frames)
        target_labels=...,        # [N]           1 where the frame shows the target
        lm_loss=...,              # scalar, cross-entropy of the answer tokens (already a mean)
    )
    terms.total.backward()

N counts frames over the whole batch (clips x frames). As in the reference (loss/multi_mask_loss.py,
SAM2's ``MultiStepMultiMasksAndIous`` built with supervise_all_iou False): the masks of frames whose
object logit is <= 0 are first blanked to -1024 (SAM2's mask head does it, in training too: no mask
gradient there); focal, dice and IoU losses are computed for each of the M candidates; only the
candidate with the lowest weighted focal+dice is trained for focal, dice and IoU; these three count
only frames whose target label is 1. The reference takes them at the SAM2 input resolution (its
1024 x 1024 masks; `mask_resolution`): the logits are upsampled bilinearly to the targets' size here. The object-score loss
(a plain BCE: focal with gamma 0, no alpha) counts every frame. Each term is summed over frames and
divided by ``normalizer`` (default N, so a per-frame mean; pass the number of clips for SAM2's own
scaling, which divides by the number of objects). Weights: focal 20, dice 2, IoU 1, object 2, LM 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lavida_core.errors import InputError
from lavida_core.modeling.segmenter import NO_OBJECT_LOGIT

MASK_RESOLUTIONS = ("image", "logits")


@dataclass(frozen=True)
class LossConfig:
    mask_weight: float = 20.0  # sigmoid focal loss on mask pixels
    dice_weight: float = 2.0
    iou_weight: float = 1.0  # L1 between predicted and actual IoU
    object_score_weight: float = 2.0
    lm_weight: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    object_focal_alpha: float = -1.0  # negative: no alpha weighting
    object_focal_gamma: float = 0.0  # 0: plain binary cross-entropy
    # The reference (like SAM2) takes the mask losses on frames that show the target only. True also
    # takes focal + dice on the other frames, against an empty mask: "segment nothing when the named
    # thing is absent" — a dense signal that models trained from random weights need (see bench/RESULTS.md).
    mask_loss_on_absent_frames: bool = False
    # The reference trains the IoU head on the best candidate only (supervise_all_iou False). True: on
    # all M candidates, our earlier choice (the shipped demo model's recipe).
    supervise_all_iou: bool = False
    # The reference's mask head blanks the masks of no-object frames (object logit <= 0) in training
    # too. False keeps their mask gradient: our earlier choice for random-init models, whose object
    # logits start below 0 so that blanking would cut every mask gradient (the demo recipe).
    blank_no_object_masks: bool = True
    # Targets for the mask losses (made by lavida_core.training.loop.collate): "image", nearest-resized
    # to the SAM2 input size (1024), as the reference; "logits", bilinear-resized (> 0.5) to the mask
    # logits' size (image size / 4): 16x fewer pixels, our earlier choice (the demo recipe).
    mask_resolution: str = "image"
    # Not in the reference (0: off). > 0 adds a pairwise ranking term on the object-score logits across
    # the whole batch: every frame that shows a named thing should score above every frame, of any of
    # the batch's clips, that shows none (softplus(negative - positive), averaged over the pairs). The
    # per-frame cross-entropy calibrates each frame alone; frame AUC pools the frames of many videos, and
    # the demo model loses it mostly to the score's level moving from video to video (bench/RESULTS.md).
    rank_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.mask_resolution not in MASK_RESOLUTIONS:
            raise InputError(f"mask_resolution must be one of {MASK_RESOLUTIONS}, got {self.mask_resolution!r}")
        if self.rank_weight < 0:
            raise InputError(f"rank_weight must be >= 0, got {self.rank_weight}")


@dataclass(frozen=True)
class LossTerms:
    """Unweighted terms and their weighted sum ``total`` (all scalar tensors)."""

    total: torch.Tensor
    mask: torch.Tensor
    dice: torch.Tensor
    iou: torch.Tensor
    object_score: torch.Tensor
    lm: torch.Tensor
    rank: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        names = ("total", "mask", "dice", "iou", "object_score", "lm", "rank")
        return {name: float(getattr(self, name).detach()) for name in names}


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, *, alpha: float, gamma: float) -> torch.Tensor:
    """Element-wise focal loss (RetinaNet); same shape as ``logits``. alpha < 0: no alpha weighting."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)  # probability given to the true class
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, M, H, W] logits and 0/1 targets -> [N, M]: 1 - (2|P∩G| + 1) / (|P| + |G| + 1), soft P."""
    prob = logits.sigmoid().flatten(2)  # [N, M, HW]
    targets = targets.flatten(2)
    intersection = (prob * targets).sum(-1)
    return 1 - (2 * intersection + 1) / (prob.sum(-1) + targets.sum(-1) + 1)


def iou_prediction_loss(logits: torch.Tensor, targets: torch.Tensor, pred_ious: torch.Tensor) -> torch.Tensor:
    """[N, M, H, W] logits, targets and [N, M] predicted IoUs -> [N, M] L1 to the actual IoU of the
    thresholded mask (logit > 0), which carries no gradient."""
    with torch.no_grad():
        predicted = logits.flatten(2) > 0  # [N, M, HW]
        truth = targets.flatten(2) > 0
        intersection = (predicted & truth).sum(-1).float()
        union = (predicted | truth).sum(-1).float()
        actual = intersection / union.clamp(min=1.0)  # [N, M]
    return (pred_ious - actual).abs()


def ranking_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[N] logits and 0/1 labels -> mean over (positive i, negative j) of softplus(logit_j - logit_i): a
    smooth 1 - AUC of the N frames pooled. 0 when either side is empty."""
    positive, negative = logits[labels > 0], logits[labels <= 0]
    if positive.numel() == 0 or negative.numel() == 0:
        return logits.sum() * 0.0  # keeps the graph: every training process's backward sees the same parameters
    return F.softplus(negative[None, :] - positive[:, None]).mean()


def _check_shapes(
    mask_logits: torch.Tensor,
    pred_ious: torch.Tensor,
    object_score_logits: torch.Tensor,
    target_masks: torch.Tensor,
    target_labels: torch.Tensor,
) -> None:
    n, m = mask_logits.shape[:2]
    ok = (
        mask_logits.dim() == 4
        and tuple(pred_ious.shape) == (n, m)
        and tuple(object_score_logits.shape) == (n, 1)
        and target_masks.dim() == 3
        and target_masks.shape[0] == n
        and tuple(target_labels.shape) == (n,)
    )
    if not ok:
        raise InputError(
            "loss inputs must be mask_logits [N, M, H, W], pred_ious [N, M], object_score_logits [N, 1], "
            f"target_masks [N, H, W], target_labels [N]; got {list(mask_logits.shape)}, {list(pred_ious.shape)}, "
            f"{list(object_score_logits.shape)}, {list(target_masks.shape)}, {list(target_labels.shape)}"
        )


def lavida_loss(
    *,
    mask_logits: torch.Tensor,
    pred_ious: torch.Tensor,
    object_score_logits: torch.Tensor,
    target_masks: torch.Tensor,
    target_labels: torch.Tensor,
    lm_loss: torch.Tensor | None = None,
    normalizer: float | None = None,
    config: LossConfig | None = None,
) -> LossTerms:
    """The weighted LAVIDA loss (see the module docstring). Mask logits at another resolution than
    the targets are resized bilinearly to the targets' size first (SAM2 trains on high-res masks)."""
    config = config or LossConfig()
    _check_shapes(mask_logits, pred_ious, object_score_logits, target_masks, target_labels)
    mask_logits = mask_logits.float()
    if config.blank_no_object_masks:
        appearing = (object_score_logits > 0)[:, :, None, None]  # [N, 1, 1, 1]
        mask_logits = torch.where(appearing, mask_logits, torch.full_like(mask_logits, NO_OBJECT_LOGIT))
    if mask_logits.shape[-2:] != target_masks.shape[-2:]:
        mask_logits = F.interpolate(mask_logits, size=target_masks.shape[-2:], mode="bilinear", align_corners=False)
    n, m = mask_logits.shape[:2]
    normalizer = float(normalizer if normalizer is not None else max(n, 1))
    targets = target_masks.float().unsqueeze(1).expand(n, m, *target_masks.shape[-2:])  # [N, M, H, W]
    present = target_labels.float()  # [N]
    mask_frames = torch.ones_like(present) if config.mask_loss_on_absent_frames else present  # [N]

    focal = sigmoid_focal_loss(mask_logits, targets, alpha=config.focal_alpha, gamma=config.focal_gamma)
    focal = focal.flatten(2).mean(-1)  # [N, M], mean over pixels
    dice = dice_loss(mask_logits, targets)  # [N, M]
    iou = iou_prediction_loss(mask_logits, targets, pred_ious.float())  # [N, M]

    best = torch.argmin(config.mask_weight * focal + config.dice_weight * dice, dim=1)  # [N]
    rows = torch.arange(n, device=mask_logits.device)
    # Frames that show the target: the best candidate only (SAM2's multi-mask loss). Frames that do not
    # (counted only with mask_loss_on_absent_frames): every candidate must be empty, else one empty
    # candidate would take the loss while the others segment whatever is there, whatever the name.
    focal_frame = torch.where(present > 0, focal[rows, best], focal.mean(dim=1))  # [N]
    dice_frame = torch.where(present > 0, dice[rows, best], dice.mean(dim=1))  # [N]
    mask_term = (focal_frame * mask_frames).sum() / normalizer
    dice_term = (dice_frame * mask_frames).sum() / normalizer
    iou_frame = iou.mean(dim=1) if config.supervise_all_iou else iou[rows, best]  # [N]
    iou_term = (iou_frame * present).sum() / normalizer

    object_logits = object_score_logits.float().squeeze(1)  # [N]
    object_loss = sigmoid_focal_loss(
        object_logits, present, alpha=config.object_focal_alpha, gamma=config.object_focal_gamma
    )  # [N], every frame counts
    object_term = object_loss.sum() / normalizer
    lm_term = lm_loss.float() if lm_loss is not None else mask_term.new_zeros(())
    rank_term = ranking_loss(object_logits, present) if config.rank_weight > 0 else mask_term.new_zeros(())

    total = (
        config.mask_weight * mask_term
        + config.dice_weight * dice_term
        + config.iou_weight * iou_term
        + config.object_score_weight * object_term
        + config.lm_weight * lm_term
        + config.rank_weight * rank_term
    )
    return LossTerms(total=total, mask=mask_term, dice=dice_term, iou=iou_term, object_score=object_term, lm=lm_term, rank=rank_term)
