"""LAVIDA loss terms: hand-computed values on tiny tensors, gradients, and the multi-mask rules."""

import math

import pytest
import torch

from lavida_core.errors import InputError
from lavida_core.training.losses import LossConfig, dice_loss, iou_prediction_loss, lavida_loss, ranking_loss, sigmoid_focal_loss

LN2 = math.log(2.0)


def test_focal_loss_at_logit_zero_matches_hand_computation():
    logits = torch.zeros(2)
    targets = torch.tensor([1.0, 0.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0)
    # p = 0.5 for both, ce = ln 2, (1 - p_t)^2 = 0.25; alpha 0.25 for positives, 0.75 for negatives
    assert loss.tolist() == pytest.approx([0.25 * 0.25 * LN2, 0.75 * 0.25 * LN2])


def test_focal_loss_with_gamma_zero_and_no_alpha_is_bce():
    logits = torch.tensor([2.0, -1.0, 0.3])
    targets = torch.tensor([1.0, 1.0, 0.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=-1.0, gamma=0.0)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert torch.allclose(loss, expected)


def test_dice_loss_hand_value():
    logits = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere
    targets = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # 1 - (2 * 0.5 + 1) / (2 + 1 + 1) = 0.5
    assert dice_loss(logits, targets).item() == pytest.approx(0.5)


def test_iou_prediction_loss_hand_value():
    logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]]])  # predicts the top row
    targets = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # IoU = 1 / 2
    pred_ious = torch.tensor([[0.8]])
    assert iou_prediction_loss(logits, targets, pred_ious).item() == pytest.approx(0.3)


def _perfect_inputs(n=4, m=3, size=8):
    target_masks = torch.zeros(n, size, size, dtype=torch.bool)
    target_masks[0, 2:5, 2:6] = True
    target_masks[2, 0:3, 4:8] = True
    labels = target_masks.flatten(1).any(1)
    sign = target_masks.float() * 2 - 1  # +1 inside, -1 outside
    mask_logits = (30 * sign).unsqueeze(1).repeat(1, m, 1, 1)
    pred_ious = torch.ones(n, m)
    object_logits = (30 * (labels.float() * 2 - 1)).unsqueeze(1)
    return mask_logits, pred_ious, object_logits, target_masks, labels


def test_perfect_prediction_gives_near_zero_loss_and_a_bad_one_does_not():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs()
    perfect = lavida_loss(
        mask_logits=mask_logits,
        pred_ious=pred_ious,
        object_score_logits=object_logits,
        target_masks=target_masks,
        target_labels=labels,
    )
    assert perfect.total.item() < 1e-4
    bad = lavida_loss(
        mask_logits=-mask_logits,
        pred_ious=pred_ious,
        object_score_logits=-object_logits,
        target_masks=target_masks,
        target_labels=labels,
    )
    assert bad.total.item() > 10.0
    assert min(bad.mask.item(), bad.dice.item(), bad.iou.item(), bad.object_score.item()) > 0.1


def test_total_matches_hand_computed_sum_on_one_positive_and_one_negative_frame():
    # frame 0 has the object (1 pixel of 2x2); frame 1 has none. M = 1, all logits 0 (the object logit
    # 0 would blank the masks, so blanking is off here: see the blanking tests below).
    target_masks = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.bool)
    labels = torch.tensor([1, 0])
    terms = lavida_loss(
        mask_logits=torch.zeros(2, 1, 2, 2),
        pred_ious=torch.full((2, 1), 0.25),
        object_score_logits=torch.zeros(2, 1),
        target_masks=target_masks,
        target_labels=labels,
        lm_loss=torch.tensor(1.5),
        config=LossConfig(blank_no_object_masks=False),
    )
    focal_frame0 = (0.25 * 0.25 * LN2 + 3 * 0.75 * 0.25 * LN2) / 4  # mean over the 4 pixels
    dice_frame0 = 0.5  # as in test_dice_loss_hand_value
    iou_frame0 = 0.25  # logits 0 predict nothing: actual IoU 0
    # terms are summed over counted frames and divided by N = 2
    assert terms.mask.item() == pytest.approx(focal_frame0 / 2)
    assert terms.dice.item() == pytest.approx(dice_frame0 / 2)
    assert terms.iou.item() == pytest.approx(iou_frame0 / 2)
    assert terms.object_score.item() == pytest.approx(LN2)  # both frames count: 2 ln2 / 2
    expected = 20 * focal_frame0 / 2 + 2 * dice_frame0 / 2 + 1 * iou_frame0 / 2 + 2 * LN2 + 1.5
    assert terms.total.item() == pytest.approx(expected)


def test_normalizer_scales_every_term_but_lm():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs()
    kwargs = dict(
        mask_logits=-mask_logits,
        pred_ious=pred_ious * 0.5,
        object_score_logits=-object_logits,
        target_masks=target_masks,
        target_labels=labels,
        lm_loss=torch.tensor(0.7),
    )
    per_frame = lavida_loss(**kwargs)
    per_clip = lavida_loss(**kwargs, normalizer=1.0)
    for name in ("mask", "dice", "iou", "object_score"):
        assert getattr(per_clip, name).item() == pytest.approx(4 * getattr(per_frame, name).item())
    assert per_clip.lm.item() == pytest.approx(per_frame.lm.item())


def test_only_the_best_candidate_mask_gets_mask_gradients():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs(n=4, m=3)
    mask_logits = mask_logits / 10  # +-3: right but not saturated, so the best one has a gradient
    mask_logits[:, 0] = -mask_logits[:, 0]  # candidate 0 wrong, candidate 1 right, candidate 2 unsure
    mask_logits[:, 2] = mask_logits[:, 2] * 0.1
    mask_logits.requires_grad_(True)
    terms = lavida_loss(
        mask_logits=mask_logits, pred_ious=pred_ious, object_score_logits=object_logits, target_masks=target_masks, target_labels=labels
    )
    terms.total.backward()
    grad = mask_logits.grad
    assert grad[0, 0].abs().sum() == 0 and grad[0, 2].abs().sum() == 0  # not the best: no gradient
    assert grad[0, 1].abs().sum() > 0  # frame 0 has the object: its best candidate (1) learns
    assert grad[1].abs().sum() == 0  # frame 1 has no object: mask terms do not count it


def test_supervise_all_iou_trains_the_iou_head_on_all_candidates_of_positive_frames_only():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs(n=4, m=3)
    pred_ious = torch.full((4, 3), 0.3, requires_grad=True)
    lavida_loss(
        mask_logits=mask_logits,
        pred_ious=pred_ious,
        object_score_logits=object_logits,
        target_masks=target_masks,
        target_labels=labels,
        config=LossConfig(supervise_all_iou=True),
    ).total.backward()
    positive = labels.bool()
    assert (pred_ious.grad[positive] != 0).all()
    assert (pred_ious.grad[~positive] == 0).all()


def _three_candidates() -> dict:
    """One 2x2 frame whose target is its top-left pixel. Candidate 0 segments exactly it (IoU 1),
    candidate 1 the whole frame (IoU 1/4), candidate 2 nothing (IoU 0); every predicted IoU is 0.5."""
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    logits = torch.stack([target[0] * 20 - 10, torch.full((2, 2), 10.0), torch.full((2, 2), -10.0)]).unsqueeze(0)
    return dict(
        mask_logits=logits,  # [1, 3, 2, 2]
        pred_ious=torch.full((1, 3), 0.5),
        object_score_logits=torch.full((1, 1), 5.0),
        target_masks=target,
        target_labels=torch.ones(1),
    )


def test_iou_loss_on_the_best_candidate_only_by_default():
    # the best candidate (lowest 20 focal + 2 dice) is the exact one: |0.5 - 1| = 0.5
    assert lavida_loss(**_three_candidates()).iou.item() == pytest.approx(0.5)
    # supervise_all_iou: the mean over the three, (|0.5 - 1| + |0.5 - 1/4| + |0.5 - 0|) / 3 = 1.25 / 3
    everyone = lavida_loss(**_three_candidates(), config=LossConfig(supervise_all_iou=True))
    assert everyone.iou.item() == pytest.approx(1.25 / 3)


def test_iou_gradient_reaches_the_best_candidate_only():
    inputs = _three_candidates()
    inputs["pred_ious"].requires_grad_(True)
    lavida_loss(**inputs).total.backward()
    assert inputs["pred_ious"].grad.tolist() == [[-1.0, 0.0, 0.0]]  # d|p - 1|/dp at p = 0.5, weight 1


def test_masks_of_frames_whose_object_logit_is_not_positive_are_blanked():
    # 4x4 frame, target the top-left 2x2 (4 of 16 pixels), a perfect mask but object logit 0 (<= 0):
    # blanked to -1024, every target pixel costs focal 0.25 x 1024 x (1 - 0)^2 = 256, the others 0, so the
    # mean is 256 x 4 / 16 = 64; dice 1 - (0 + 1) / (0 + 4 + 1) = 0.8; actual IoU 0 against 0.5.
    target = torch.zeros(1, 4, 4)
    target[0, :2, :2] = 1.0
    logits = (target * 20 - 10).unsqueeze(1).repeat(1, 3, 1, 1).requires_grad_(True)  # [1, 3, 4, 4]
    common = dict(pred_ious=torch.full((1, 3), 0.5), target_masks=target, target_labels=torch.ones(1))
    terms = lavida_loss(mask_logits=logits, object_score_logits=torch.zeros(1, 1), **common)
    assert terms.mask.item() == pytest.approx(64.0)
    assert terms.dice.item() == pytest.approx(0.8)
    assert terms.iou.item() == pytest.approx(0.5)
    terms.total.backward()
    assert logits.grad.abs().sum() == 0  # no mask gradient on a blanked frame
    appearing = lavida_loss(mask_logits=logits, object_score_logits=torch.full((1, 1), 0.1), **common)
    assert appearing.mask.item() < 1e-3 and appearing.dice.item() < 0.05  # logit > 0: not blanked
    kept = lavida_loss(mask_logits=logits, object_score_logits=torch.zeros(1, 1), **common, config=LossConfig(blank_no_object_masks=False))
    assert kept.mask.item() == pytest.approx(appearing.mask.item())  # the option keeps the mask


def test_negative_frames_change_only_the_object_score_term():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs()
    base = lavida_loss(
        mask_logits=mask_logits, pred_ious=pred_ious, object_score_logits=object_logits, target_masks=target_masks, target_labels=labels
    )
    noisy = mask_logits.clone()
    noisy[~labels.bool()] = torch.randn_like(noisy[~labels.bool()]) * 10
    changed = lavida_loss(
        mask_logits=noisy, pred_ious=pred_ious * 0.1, object_score_logits=object_logits, target_masks=target_masks, target_labels=labels
    )
    # pred_ious changed on positive frames too, so compare mask and dice only
    assert changed.mask.item() == pytest.approx(base.mask.item())
    assert changed.dice.item() == pytest.approx(base.dice.item())


def test_gradients_reach_every_input_and_training_lowers_the_loss():
    torch.manual_seed(0)
    _, _, _, target_masks, labels = _perfect_inputs(n=4, m=3)
    mask_logits = torch.randn(4, 3, 8, 8, requires_grad=True)
    pred_ious = torch.rand(4, 3, requires_grad=True)
    object_logits = torch.randn(4, 1, requires_grad=True)
    lm = torch.tensor(2.0, requires_grad=True)
    optimizer = torch.optim.SGD([mask_logits, pred_ious, object_logits, lm], lr=0.5)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        terms = lavida_loss(
            mask_logits=mask_logits,
            pred_ious=pred_ious,
            object_score_logits=object_logits,
            target_masks=target_masks,
            target_labels=labels,
            lm_loss=lm * 1.0,
        )
        terms.total.backward()
        if not losses:
            for tensor in (mask_logits, pred_ious, object_logits, lm):
                assert tensor.grad is not None and tensor.grad.abs().sum() > 0
        losses.append(terms.total.item())
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]


def test_low_resolution_logits_are_resized_to_the_targets():
    target_masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    target_masks[0, :8] = True
    low_res = torch.full((1, 1, 8, 8), -20.0)
    low_res[0, 0, :4] = 20.0  # the top half at half resolution
    terms = lavida_loss(
        mask_logits=low_res,
        pred_ious=torch.ones(1, 1),
        object_score_logits=torch.full((1, 1), 20.0),
        target_masks=target_masks,
        target_labels=torch.ones(1),
    )
    assert terms.dice.item() < 0.05


def test_bfloat16_inputs_give_a_float32_loss():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs()
    terms = lavida_loss(
        mask_logits=mask_logits.bfloat16(),
        pred_ious=pred_ious.bfloat16(),
        object_score_logits=object_logits.bfloat16(),
        target_masks=target_masks,
        target_labels=labels,
    )
    assert terms.total.dtype == torch.float32


def test_mismatched_shapes_raise_input_error():
    with pytest.raises(InputError, match="pred_ious"):
        lavida_loss(
            mask_logits=torch.zeros(2, 3, 4, 4),
            pred_ious=torch.zeros(2, 1),
            object_score_logits=torch.zeros(2, 1),
            target_masks=torch.zeros(2, 4, 4),
            target_labels=torch.zeros(2),
        )


def test_weights_come_from_the_config():
    mask_logits, pred_ious, object_logits, target_masks, labels = _perfect_inputs()
    kwargs = dict(
        mask_logits=-mask_logits, pred_ious=pred_ious, object_score_logits=-object_logits, target_masks=target_masks, target_labels=labels
    )
    only_dice = LossConfig(mask_weight=0, dice_weight=1, iou_weight=0, object_score_weight=0, lm_weight=0)
    terms = lavida_loss(**kwargs, config=only_dice)
    assert terms.total.item() == pytest.approx(terms.dice.item())
    assert terms.as_floats()["dice"] == pytest.approx(terms.dice.item())


def test_mask_loss_on_absent_frames_option_penalises_a_mask_where_nothing_should_be():
    # One frame without the target, with a confident mask predicted: the reference loss ignores it for
    # the mask terms; the option counts it against an empty target.
    logits = torch.full((1, 3, 4, 4), 4.0)
    common = dict(
        mask_logits=logits,
        pred_ious=torch.zeros(1, 3),
        object_score_logits=torch.zeros(1, 1),
        target_masks=torch.zeros(1, 4, 4),
        target_labels=torch.zeros(1),
    )
    reference = lavida_loss(**common)
    dense = lavida_loss(**common, config=LossConfig(mask_loss_on_absent_frames=True, blank_no_object_masks=False))
    assert reference.mask == 0 and reference.dice == 0
    assert dense.mask > 0.5 and dense.dice > 0.9
    assert torch.isclose(dense.object_score, reference.object_score)


def test_absent_frames_count_every_candidate_so_one_empty_candidate_cannot_hedge():
    # Candidate 0 is empty, candidates 1 and 2 segment the whole frame. On a frame without the target, a
    # min over candidates would pick the empty one and cost nothing, whatever the others show (a model
    # could then segment every shape whatever the name). Absent frames count all candidates; frames with
    # the target still count the best candidate only.
    hedging = torch.full((1, 3, 4, 4), 6.0)
    hedging[0, 0] = -6.0
    empty = torch.full((1, 3, 4, 4), -6.0)
    common = dict(
        pred_ious=torch.zeros(1, 3),
        object_score_logits=torch.zeros(1, 1),
        target_masks=torch.zeros(1, 4, 4),
        target_labels=torch.zeros(1),
        config=LossConfig(mask_loss_on_absent_frames=True, blank_no_object_masks=False),
    )
    hedged = lavida_loss(mask_logits=hedging, **common)
    clean = lavida_loss(mask_logits=empty, **common)
    assert clean.dice < 0.05 and hedged.dice > 0.6
    assert hedged.mask > 10 * clean.mask
    full = torch.ones(1, 4, 4)
    present = dict(common, target_masks=full, target_labels=torch.ones(1))
    assert lavida_loss(mask_logits=hedging, **present).dice < 0.05  # best candidate (1 or 2) is right


def test_ranking_loss_hand_values_and_its_empty_sides():
    logits = torch.tensor([3.0, 2.0, -1.0, 0.0])
    labels = torch.tensor([1, 1, 0, 0])
    pairs = [(3.0, -1.0), (3.0, 0.0), (2.0, -1.0), (2.0, 0.0)]  # (positive, negative)
    expected = sum(math.log1p(math.exp(neg - pos)) for pos, neg in pairs) / 4
    assert ranking_loss(logits, labels).item() == pytest.approx(expected)
    assert ranking_loss(-logits, labels).item() > 1.0  # negatives above positives cost more
    assert ranking_loss(logits, torch.zeros(4)).item() == 0.0  # no positive frame: no pair


def test_rank_weight_adds_the_ranking_term_across_every_frame_of_the_batch():
    # two frames of one clip and two of another: the ranking term compares frames across clips too
    target_masks = torch.zeros(4, 2, 2, dtype=torch.bool)
    target_masks[0, 0, 0] = target_masks[2, 0, 0] = True
    labels = torch.tensor([1, 0, 1, 0])
    object_logits = torch.tensor([[1.0], [-2.0], [0.5], [2.0]], requires_grad=True)
    kwargs = dict(mask_logits=torch.zeros(4, 1, 2, 2), pred_ious=torch.zeros(4, 1), target_masks=target_masks, target_labels=labels)
    off = lavida_loss(**kwargs, object_score_logits=object_logits)
    on = lavida_loss(**kwargs, object_score_logits=object_logits, config=LossConfig(rank_weight=2.0))
    assert off.rank.item() == 0.0
    assert on.rank.item() == pytest.approx(ranking_loss(object_logits.squeeze(1), labels).item())
    assert on.total.item() == pytest.approx(off.total.item() + 2.0 * on.rank.item())
    assert on.as_floats()["rank"] == pytest.approx(on.rank.item())
    (grad,) = torch.autograd.grad(on.rank, object_logits)
    assert grad[3].item() > 0 and grad[2].item() < 0  # the negative scored 2.0 goes down, the positive at 0.5 up
    with pytest.raises(InputError, match="rank_weight"):
        LossConfig(rank_weight=-1.0)
