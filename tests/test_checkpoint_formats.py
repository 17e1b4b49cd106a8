"""Loading the real file formats: Qwen2-VL and CLIP Hugging Face folders, an official SAM2.1 `.pt`.

The files are made here with random weights by the libraries that define those formats
(`save_pretrained`, SAM2's own `build_sam2` + `torch.save`), at tiny sizes; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPConfig, CLIPModel, Qwen2VLForConditionalGeneration

from lavida_core.checkpoint import Checkpoint, build_lavida, load_lavida, save_lavida
from lavida_core.clip_query import ClipQuery
from lavida_core.config import MaskDecoderConfig, RetrievalConfig, preset
from lavida_core.detector import LavidaDetector
from lavida_core.errors import CheckpointError
from lavida_core.modeling.clip_retrieval import clip_vision_config
from lavida_core.modeling.mllm import qwen_config
from lavida_core.modeling.text_encoder import clip_text_config
from lavida_core.tokenizer import QWEN_SPECIAL_TOKENS, SpecialIds, byte_level_tokenizer, load_clip_tokenizer

# SAM2Base hard-codes its decoder sizes (mlp 2048, 8 heads, IoU head 256): the paper's values.
TINY_WITH_SAM2_DECODER = preset("tiny").replace(mask_decoder=MaskDecoderConfig())


def _sam2_overrides(config) -> list[str]:
    image = config.image_encoder
    d = image.d_model
    channels = [image.embed_dim * 2**i for i in reversed(range(len(image.stages)))]
    return [
        f"++model.image_size={image.image_size}",
        f"++model.image_encoder.trunk.embed_dim={image.embed_dim}",
        f"++model.image_encoder.trunk.num_heads={image.num_heads}",
        f"++model.image_encoder.trunk.stages={list(image.stages)}",
        f"++model.image_encoder.trunk.global_att_blocks={list(image.global_att_blocks)}",
        f"++model.image_encoder.trunk.window_spec={list(image.window_spec)}",
        f"++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size={list(image.window_pos_embed_bkg_spatial_size)}",
        f"++model.image_encoder.neck.d_model={d}",
        f"++model.image_encoder.neck.backbone_channel_list={channels}",
        f"++model.image_encoder.neck.position_encoding.num_pos_feats={d}",
    ]


@pytest.fixture(scope="module")
def real_format_files(tmp_path_factory):
    """A Qwen2-VL folder, a CLIP folder (full CLIPModel, as published) and a SAM2.1 .pt."""
    from sam2.build_sam import build_sam2

    root = tmp_path_factory.mktemp("real")
    config = TINY_WITH_SAM2_DECODER
    # Qwen2-VL: its tokenizer lacks <SEG> (LAVIDA adds it), so the folder's vocabulary is one smaller.
    qwen_tokenizer = byte_level_tokenizer(QWEN_SPECIAL_TOKENS[:-1])
    qwen_tokenizer.pad_token = "<|endoftext|>"
    ids = SpecialIds(video=qwen_tokenizer.convert_tokens_to_ids("<|video_pad|>"), seg=-1, pad=qwen_tokenizer.pad_token_id)
    qwen_cfg = qwen_config(dataclasses.replace(config.mllm, vocab_size=len(qwen_tokenizer)), ids)
    torch.manual_seed(0)
    Qwen2VLForConditionalGeneration(qwen_cfg).save_pretrained(root / "qwen")
    qwen_tokenizer.save_pretrained(root / "qwen")
    # CLIP: the whole two-tower model, as openai/clip-vit-base-patch32 is published.
    clip_tokenizer = load_clip_tokenizer(None)
    text = clip_text_config(
        config.text_encoder, bos_id=clip_tokenizer.bos_token_id, eos_id=clip_tokenizer.eos_token_id, pad_id=clip_tokenizer.pad_token_id
    )
    CLIPModel(_clip_config(text, config.retrieval)).save_pretrained(root / "clip")
    clip_tokenizer.save_pretrained(root / "clip")
    # SAM2.1: built by SAM2's own builder from its official config (memory modules included).
    sam = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu", hydra_overrides_extra=_sam2_overrides(config))
    torch.save({"model": sam.state_dict()}, root / "sam2.1_tiny.pt")
    return root, sam.state_dict()


def _clip_config(text, retrieval: RetrievalConfig) -> CLIPConfig:
    vision = clip_vision_config(retrieval)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=retrieval.projection_dim)


def test_real_formats_load_through_build_lavida(real_format_files):
    root, sam_state = real_format_files
    checkpoint = Checkpoint(qwen_dir=root / "qwen", clip_dir=root / "clip", sam2_path=root / "sam2.1_tiny.pt")
    loaded = build_lavida(TINY_WITH_SAM2_DECODER, checkpoint)
    assert not loaded.trained, "base parts alone are not a trained LAVIDA"
    ours = loaded.model.state_dict()
    for key in ("image_encoder.trunk.patch_embed.proj.weight", "sam_mask_decoder.iou_token.weight", "no_mem_embed"):
        assert torch.equal(ours[f"segmenter.{key}"], sam_state[key])
    qwen = Qwen2VLForConditionalGeneration.from_pretrained(root / "qwen")
    name = "model.language_model.layers.0.mlp.up_proj.weight"
    assert torch.equal(ours[f"mllm.qwen.{name}"], qwen.state_dict()[name])
    # <SEG> was added to the folder's tokenizer and the embeddings grew by one row.
    assert loaded.qwen_tokenizer.convert_tokens_to_ids("<SEG>") == len(loaded.qwen_tokenizer) - 1
    assert ours["mllm.qwen.model.language_model.embed_tokens.weight"].shape[0] == len(loaded.qwen_tokenizer)
    clip = CLIPModel.from_pretrained(root / "clip")
    assert torch.equal(
        ours["text_encoder.clip.embeddings.token_embedding.weight"],
        clip.state_dict()["text_model.embeddings.token_embedding.weight"],
    )
    for key in ("visual_projection.weight", "text_projection.weight", "logit_scale", "vision_model.encoder.layers.1.mlp.fc2.weight"):
        assert torch.equal(ours[f"retrieval.{key}"], clip.state_dict()[key]), key  # the search tower, strictly
    result = LavidaDetector(loaded, model_name="real").detect(
        np.random.default_rng(0).integers(0, 256, (4, 40, 56, 3), dtype=np.uint8), ["fire"]
    )
    assert result.scores.shape == (4,) and result.masks.shape == (4, 40, 56)


def test_clip_folder_with_another_image_tower_fails_naming_keys(real_format_files, tmp_path):
    root, _ = real_format_files
    clip = CLIPModel.from_pretrained(root / "clip")
    smaller = dataclasses.replace(TINY_WITH_SAM2_DECODER.retrieval, num_hidden_layers=1, projection_dim=16)
    CLIPModel(_clip_config(clip.config.text_config, smaller)).save_pretrained(tmp_path / "clip")
    shutil.copy(root / "clip" / "tokenizer.json", tmp_path / "clip")
    with pytest.raises(CheckpointError, match=r"missing key\(s\): vision_model\.encoder\.layers\.1.*wrong shape key\(s\): text_projection"):
        build_lavida(TINY_WITH_SAM2_DECODER, Checkpoint(clip_dir=tmp_path / "clip"))


def test_the_search_text_side_loads_alone_with_the_detectors_weights(real_format_files, tmp_path):
    """ClipQuery (the text tower + text_projection alone) embeds a description exactly as the full
    model's parts do: from a small folder's CLIP base, a self-contained folder, and a preset."""
    root, loaded = _small_folder(real_format_files, tmp_path)
    save_lavida(loaded, tmp_path / "full")
    tokens = loaded.clip_tokenizer(["a person climbing a fence"], return_tensors="pt")
    with torch.no_grad():
        pooled = loaded.model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
        expected = loaded.model.retrieval.embed_texts(pooled)[0].numpy()
    for folder in ("small", "full"):
        got = ClipQuery.load(str(tmp_path / folder)).embed("a person climbing a fence")
        np.testing.assert_allclose(got.vector, expected, atol=1e-6, err_msg=folder)
    preset_query = ClipQuery.load("tiny").embed("  fire  ")
    tiny = LavidaDetector.load("tiny").model
    tokens = load_clip_tokenizer(None)(["fire"], return_tensors="pt")
    with torch.no_grad():
        expected = tiny.retrieval.embed_texts(tiny.text_encoder(tokens["input_ids"], tokens["attention_mask"]))[0].numpy()
    np.testing.assert_allclose(preset_query.vector, expected, atol=1e-6)
    long = ClipQuery.load("tiny").embed("x" * 200)
    assert long.truncated and long.n_tokens > 77


def test_sam2_checkpoint_with_a_foreign_key_fails_naming_it(real_format_files, tmp_path):
    root, sam_state = real_format_files
    state = dict(sam_state)
    state["sam_mask_decoder.extra_head.weight"] = torch.zeros(1)
    del state["image_encoder.neck.convs.0.conv.weight"]
    torch.save({"model": state}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as error:
        build_lavida(TINY_WITH_SAM2_DECODER, Checkpoint(sam2_path=tmp_path / "bad.pt"))
    assert "sam_mask_decoder.extra_head.weight" in str(error.value)
    assert "image_encoder.neck.convs.0.conv.weight" in str(error.value)


def _qwen_folder(folder, config, **sizes):
    """A Qwen2-VL folder as in `real_format_files`, of the tiny size changed by `sizes` (MLLMConfig fields)."""
    qwen_tokenizer = byte_level_tokenizer(QWEN_SPECIAL_TOKENS[:-1])
    qwen_tokenizer.pad_token = "<|endoftext|>"
    ids = SpecialIds(video=qwen_tokenizer.convert_tokens_to_ids("<|video_pad|>"), seg=-1, pad=qwen_tokenizer.pad_token_id)
    qwen_cfg = qwen_config(dataclasses.replace(config.mllm, vocab_size=len(qwen_tokenizer), **sizes), ids)
    torch.manual_seed(1)
    Qwen2VLForConditionalGeneration(qwen_cfg).save_pretrained(folder)
    qwen_tokenizer.save_pretrained(folder)
    return folder


def test_qwen_folder_of_another_size_fails_naming_keys(real_format_files, tmp_path):
    """A whole Qwen2-VL folder of another size (hidden 64, not 32) under LAVIDA's trained parts made for the
    tiny one: the embeddings, LM head and LoRA keys are named as the wrong shape."""
    root, _ = _small_folder(real_format_files, tmp_path)
    other = _qwen_folder(tmp_path / "qwen64", TINY_WITH_SAM2_DECODER, hidden_size=64, num_attention_heads=8)
    checkpoint = Checkpoint(
        qwen_dir=other, clip_dir=root / "clip", sam2_path=root / "sam2.1_tiny.pt", trained_path=tmp_path / "small" / "trained.safetensors"
    )
    with pytest.raises(CheckpointError, match="wrong shape") as error:
        build_lavida(TINY_WITH_SAM2_DECODER, checkpoint)
    message = str(error.value)
    assert "trained.safetensors does not fit this model" in message
    for key in (
        "mllm.qwen.lm_head.weight",
        "mllm.qwen.model.language_model.embed_tokens.weight",
        "mllm.qwen.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight",
    ):
        assert key in message, message


def test_qwen_folder_whose_weights_are_of_another_size_than_its_config_fails_naming_keys(real_format_files, tmp_path):
    root, _ = real_format_files
    other = _qwen_folder(tmp_path / "qwen", TINY_WITH_SAM2_DECODER, intermediate_size=128)
    shutil.copy(root / "qwen" / "config.json", other / "config.json")  # says intermediate_size 64
    with pytest.raises(CheckpointError, match="wrong shape") as error:
        build_lavida(TINY_WITH_SAM2_DECODER, Checkpoint(qwen_dir=other))
    assert "model.language_model.layers.0.mlp.up_proj.weight" in str(error.value)


def test_sam2_checkpoint_of_another_size_fails_naming_keys(real_format_files):
    root, _ = real_format_files
    bigger = TINY_WITH_SAM2_DECODER
    # The folder is read as is; a SAM2 file of another image-encoder size is a shape error.
    other = bigger.replace(image_encoder=dataclasses.replace(bigger.image_encoder, embed_dim=16))
    with pytest.raises(CheckpointError, match="wrong shape") as error:
        build_lavida(other, Checkpoint(sam2_path=root / "sam2.1_tiny.pt"))
    assert "sam2.1_tiny.pt does not fit this model" in str(error.value)
    assert "image_encoder.trunk.blocks.0.attn.qkv.weight" in str(error.value), str(error.value)


def test_not_a_checkpoint_file(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read SAM2 checkpoint"):
        build_lavida(preset("tiny"), Checkpoint(sam2_path=tmp_path / "junk.pt"))
    with pytest.raises(CheckpointError, match="Qwen2-VL"):
        build_lavida(preset("tiny"), Checkpoint(qwen_dir=tmp_path))


# --- small model folders: trained parts + references to the base files -------------------------------


def _small_folder(real_format_files, tmp_path):
    root, _ = real_format_files
    base = Checkpoint(qwen_dir=root / "qwen", clip_dir=root / "clip", sam2_path=root / "sam2.1_tiny.pt")
    loaded = build_lavida(TINY_WITH_SAM2_DECODER, base)
    loaded.trained = True
    save_lavida(loaded, tmp_path / "small", base=base)
    return root, loaded


def test_small_folder_round_trip_gives_identical_outputs(real_format_files, tmp_path):
    root, loaded = _small_folder(real_format_files, tmp_path)
    files = sorted(p.name for p in (tmp_path / "small").iterdir())
    assert files == ["lavida.json", "trained.safetensors"]  # no base weight copied
    meta = json.loads((tmp_path / "small" / "lavida.json").read_text())
    assert set(meta["base"]) == {"qwen_dir", "clip_dir", "sam2_path"} and all(
        {"path", "size", "sha256"} <= set(b) for b in meta["base"].values()
    )
    again = load_lavida(tmp_path / "small")
    assert again.trained
    clip = np.random.default_rng(1).integers(0, 256, (4, 40, 56, 3), dtype=np.uint8)
    before = LavidaDetector(loaded, model_name="a").detect(clip, ["fire"])
    after = LavidaDetector(again, model_name="b").detect(clip, ["fire"])
    # Loaded tensors are views into the file at its (not 64-byte) alignment, which CPU kernels may round
    # differently from fresh ones: scores agree to 6e-8 (copying them all would double a load's memory).
    np.testing.assert_allclose(before.scores, after.scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(before.masks, after.masks)


def test_a_swapped_or_missing_base_is_refused_naming_it_and_a_moved_one_found_by_override(real_format_files, tmp_path):
    root, _ = _small_folder(real_format_files, tmp_path)
    moved = tmp_path / "mounted" / "sam2.pt"
    moved.parent.mkdir()
    shutil.copy(root / "sam2.1_tiny.pt", moved)
    assert load_lavida(tmp_path / "small", base_paths={"sam2_path": moved}).trained  # a cluster mounts it elsewhere
    other = tmp_path / "other.pt"
    state = torch.load(moved, weights_only=True)
    state["model"]["no_mem_embed"] = state["model"]["no_mem_embed"] + 1.0  # another SAM2 of the same shape
    torch.save(state, other)
    with pytest.raises(CheckpointError, match=r"the base sam2_path at .*other\.pt is not the one"):
        load_lavida(tmp_path / "small", base_paths={"sam2_path": other})
    with pytest.raises(CheckpointError, match=r"needs its base clip_dir at .*nowhere, which is missing.*--model-base clip_dir=PATH"):
        load_lavida(tmp_path / "small", base_paths={"clip_dir": tmp_path / "nowhere"})
    with pytest.raises(CheckpointError, match="references every frozen part"):
        save_lavida(build_lavida(TINY_WITH_SAM2_DECODER), tmp_path / "half", base=Checkpoint(sam2_path=moved))


def test_qwen_folder_in_the_published_key_layout_loads(real_format_files):
    """Qwen2-VL-7B-Instruct's published safetensors name `model.layers.N…`, `visual.blocks.N…`,
    `lm_head.weight`; transformers writes that layout too (and maps it to its own module names)."""
    root, _ = real_format_files
    [weights] = list((root / "qwen").glob("*.safetensors"))
    state = load_file(str(weights))
    assert "lm_head.weight" in state and "model.layers.0.mlp.up_proj.weight" in state and "visual.blocks.0.mlp.fc1.weight" in state
    assert not any(k.startswith(("model.language_model.", "model.visual.")) for k in state)
    checkpoint = Checkpoint(qwen_dir=root / "qwen", clip_dir=root / "clip", sam2_path=root / "sam2.1_tiny.pt")
    ours = build_lavida(TINY_WITH_SAM2_DECODER, checkpoint).model.state_dict()
    assert torch.equal(ours["mllm.qwen.model.language_model.layers.0.mlp.up_proj.weight"], state["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(ours["mllm.qwen.model.visual.blocks.0.mlp.fc1.weight"], state["visual.blocks.0.mlp.fc1.weight"])


def test_a_small_folder_load_builds_the_parts_its_files_fill_empty(real_format_files, tmp_path, monkeypatch):
    """SAM2 (from its .pt) and the projector (from trained.safetensors) are built on the meta device and
    assigned from the files: no random weights are made first for them."""
    from lavida_core import checkpoint

    _small_folder(real_format_files, tmp_path)
    built = {}
    for name in ("Segmenter", "SemanticProjector"):
        original = getattr(checkpoint, name)

        def record(*args, _original=original, _name=name, **kwargs):
            module = _original(*args, **kwargs)
            built[_name] = {p.device.type for p in module.parameters()}
            return module

        monkeypatch.setattr(checkpoint, name, record)
    again = load_lavida(tmp_path / "small")
    assert built == {"Segmenter": {"meta"}, "SemanticProjector": {"meta"}}
    assert {p.device.type for p in again.model.parameters()} == {"cpu"}  # every one assigned from a file
