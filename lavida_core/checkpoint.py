"""Build LAVIDA from a config, and load its weights strictly from local files.

`build_lavida(config, checkpoint=None)` is the one way to get a model:
- no checkpoint: every part randomly initialised from the config (tokenizers: byte-level fallback);
- `Checkpoint(qwen_dir=, clip_dir=, sam2_path=, trained_path=)`: Qwen2-VL and CLIP Hugging Face
  folders, an official SAM2.1 `.pt`, and LAVIDA's own trained parts (safetensors: LoRA, projector,
  mask decoder, prompt encoder, token embeddings and LM head) — any subset, the rest random;
- `Checkpoint(full_path=)`: a whole-model safetensors written by `save_lavida`.

Every load is strict: a missing, unexpected or wrongly-shaped key raises CheckpointError naming the
keys. The only keys ever skipped are SAM2's video-memory modules (`SAM2_UNUSED_KEY_PREFIXES`), and a
CLIP checkpoint's image tower and projections (`CLIP_UNUSED_KEY_PREFIXES`) when the config has no
`retrieval` part; with one (the presets), they load strictly into `model.retrieval` (search).

Random parts come from the build's seed; the retrieval part from a seed of its own (`part_seed`),
so that adding it left every other part of a preset's random weights as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformers import CLIPModel, CLIPTextModel, PreTrainedTokenizerBase, Qwen2VLForConditionalGeneration
from transformers.utils import logging as hf_logging

from lavida_core.config import LavidaConfig, RetrievalConfig
from lavida_core.errors import CheckpointError
from lavida_core.model_folders import CONFIG_FILE, FORMAT_VERSION, PRESET_CARD, ModelCard, read_meta
from lavida_core.modeling.clip_retrieval import ClipRetrieval
from lavida_core.modeling.mllm import LavidaMLLM, qwen_config
from lavida_core.modeling.model import LavidaModel
from lavida_core.modeling.projector import SemanticProjector
from lavida_core.modeling.segmenter import SAM2_UNUSED_KEY_PREFIXES, Segmenter
from lavida_core.modeling.text_encoder import TextEncoder, clip_text_config
from lavida_core.tokenizer import SpecialIds, load_clip_tokenizer, load_qwen_tokenizer

log = logging.getLogger(__name__)

CLIP_UNUSED_KEY_PREFIXES = ("vision_model.", "visual_projection.", "text_projection.", "logit_scale")
# What LAVIDA trains (reference): LoRA on the LLM, the projector, SAM2's decoder and prompt encoder,
# and the token embeddings + LM head (which hold the added <SEG> token).
MLLM_PART_PATTERNS = (".lora_", "language_model.embed_tokens.", "qwen.lm_head.")  # the MLLM's trained parts
TRAINED_PART_PATTERNS = (*MLLM_PART_PATTERNS, "projector.", "segmenter.sam_mask_decoder.", "segmenter.sam_prompt_encoder.")
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    qwen_dir: Path | None = None
    clip_dir: Path | None = None
    sam2_path: Path | None = None
    trained_path: Path | None = None
    full_path: Path | None = None

    @property
    def trained(self) -> bool:
        """Whether LAVIDA's own trained parts are loaded (without them the detector is untrained)."""
        return self.trained_path is not None or self.full_path is not None


@dataclass
class LoadedLavida:
    model: LavidaModel
    qwen_tokenizer: PreTrainedTokenizerBase
    clip_tokenizer: PreTrainedTokenizerBase
    trained: bool
    card: ModelCard = PRESET_CARD


def build_lavida(
    config: LavidaConfig,
    checkpoint: Checkpoint | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> LoadedLavida:
    """The model (eval mode) and its tokenizers. Random parts are created directly on `device` in `dtype`,
    from `seed`: the same config and seed give the same weights in every process (every Ray actor of a
    scan scores with the same random preset), without touching the caller's random state."""
    checkpoint = checkpoint or Checkpoint()
    qwen_tokenizer = load_qwen_tokenizer(checkpoint.qwen_dir)
    clip_tokenizer = load_clip_tokenizer(checkpoint.clip_dir)
    ids = SpecialIds.of(qwen_tokenizer)
    if checkpoint.full_path is not None:  # every weight comes from one file: nothing random is made first
        if any(p is not None for p in (checkpoint.qwen_dir, checkpoint.clip_dir, checkpoint.sam2_path, checkpoint.trained_path)):
            raise CheckpointError("a full checkpoint holds every weight: give full_path alone")
        model = _assemble_empty(config, ids, qwen_tokenizer, clip_tokenizer)
        _load_assigned(model, checkpoint.full_path, device=torch.device(device), dtype=dtype)
        model.to(device=device, dtype=dtype)  # the buffers that no file holds (rotary frequencies, ...)
        model.eval()
        return LoadedLavida(
            model=model, qwen_tokenizer=qwen_tokenizer, clip_tokenizer=clip_tokenizer, trained=True, card=ModelCard(trained=True)
        )
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.device(device), _default_dtype(dtype):
        torch.manual_seed(seed)
        model = _assemble(config, checkpoint, ids, qwen_tokenizer, clip_tokenizer, dtype=dtype)
    if checkpoint.trained_path is not None:
        load_trained_parts(model, checkpoint.trained_path, device=torch.device(device), dtype=dtype)
    model.to(device=device, dtype=dtype)
    model.eval()
    return LoadedLavida(
        model=model,
        qwen_tokenizer=qwen_tokenizer,
        clip_tokenizer=clip_tokenizer,
        trained=checkpoint.trained,
        card=ModelCard(trained=checkpoint.trained),
    )


def _assemble(
    config: LavidaConfig,
    checkpoint: Checkpoint,
    ids: SpecialIds,
    qwen_tokenizer: PreTrainedTokenizerBase,
    clip_tokenizer: PreTrainedTokenizerBase,
    *,
    dtype: torch.dtype,
) -> LavidaModel:
    vocab_size = max(config.mllm.vocab_size, len(qwen_tokenizer))
    qwen = _build_qwen(config, ids, checkpoint.qwen_dir, vocab_size=vocab_size, dtype=dtype)
    if config.lora.r > 0:
        from peft import LoraConfig as PeftLoraConfig  # here: importing peft costs ~3 s, and only a build needs it
        from peft import inject_adapter_in_model

        for targets, part in (
            (config.lora.target_modules, qwen.model.language_model),
            (config.lora.vision_target_modules, qwen.model.visual),
        ):
            if targets:
                lora = PeftLoraConfig(
                    r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout, target_modules=list(targets)
                )
                inject_adapter_in_model(lora, part)
    text_encoder = TextEncoder(build_clip_text(config, clip_tokenizer, checkpoint.clip_dir, dtype=dtype))
    retrieval = build_retrieval(config.retrieval, text_encoder.dim, checkpoint.clip_dir, dtype=dtype)
    # a part that a file fills is built empty (meta), never with random weights first
    with _empty_if(checkpoint.sam2_path is not None):
        segmenter = Segmenter(image=config.image_encoder, decoder=config.mask_decoder)
    if checkpoint.sam2_path is not None:
        load_sam2_checkpoint(segmenter, checkpoint.sam2_path)
    mllm = LavidaMLLM(qwen, ids=ids, compression=config.compression)
    with _empty_if(checkpoint.trained_path is not None):  # the projector is one of the trained parts
        projector = SemanticProjector(
            config.projector, llm_dim=mllm.hidden_size, text_dim=text_encoder.dim, vision_dim=config.image_encoder.d_model
        )
    return LavidaModel(config=config, mllm=mllm, text_encoder=text_encoder, segmenter=segmenter, projector=projector, retrieval=retrieval)


def _empty_if(condition: bool):
    """Parameters on the meta device when `condition` (a file will assign them), else nothing changes."""
    from accelerate import init_empty_weights

    return init_empty_weights() if condition else contextlib.nullcontext()


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_empty(config: LavidaConfig) -> LavidaModel:
    """The model a config builds with its parameters on the meta device (nothing allocated): for sizes."""
    qwen_tokenizer, clip_tokenizer = load_qwen_tokenizer(None), load_clip_tokenizer(None)
    return _assemble_empty(config, SpecialIds.of(qwen_tokenizer), qwen_tokenizer, clip_tokenizer)


def _assemble_empty(
    config: LavidaConfig, ids: SpecialIds, qwen_tokenizer: PreTrainedTokenizerBase, clip_tokenizer: PreTrainedTokenizerBase
) -> LavidaModel:
    """The model with its parameters on the meta device (buffers real and small)."""
    from accelerate import init_empty_weights

    with init_empty_weights():  # SAM2's builder needs real scalars, so not torch.device("meta")
        return _assemble(config, Checkpoint(), ids, qwen_tokenizer, clip_tokenizer, dtype=torch.float32)


def _load_assigned(model: torch.nn.Module, path: Path, *, device: torch.device, dtype: torch.dtype) -> None:
    """Every state-dict entry of `model` from the safetensors file at `path`, each tensor read straight
    to `device` and cast to `dtype` (floating ones) before it replaces the empty (meta) one: the host
    never holds a second copy. As strict as `_load_strict`: missing, unexpected, wrong-shape keys named."""
    own = model.state_dict()
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
            check_keys(path, expected={k: tuple(v.shape) for k, v in own.items()}, given=shapes)
            state = {key: _cast(file.get_tensor(key), dtype) for key in own}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read safetensors file {path}: {error}") from error
    model.load_state_dict(state, strict=True, assign=True)


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def parameter_count(config: LavidaConfig) -> int:
    return sum(p.numel() for p in build_empty(config).parameters())


def _build_qwen(
    config: LavidaConfig, ids: SpecialIds, folder: Path | None, *, vocab_size: int, dtype: torch.dtype
) -> Qwen2VLForConditionalGeneration:
    if folder is None:
        hf_config = qwen_config(replace(config.mllm, vocab_size=vocab_size), ids)
        return Qwen2VLForConditionalGeneration(hf_config)
    try:
        with _quiet_transformers():
            qwen, info = Qwen2VLForConditionalGeneration.from_pretrained(
                str(folder),
                output_loading_info=True,
                local_files_only=True,
                attn_implementation=config.mllm.attn_implementation,
                dtype=dtype,
                # weights of another size than the folder's config.json: listed in the loading info
                # (named by _raise_on_loading_info) instead of a RuntimeError without key names
                ignore_mismatched_sizes=True,
            )
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot load the Qwen2-VL folder {folder}: {error}") from error
    _raise_on_loading_info(info, source=folder, allowed_unexpected=())
    qwen.resize_token_embeddings(vocab_size)
    qwen.config.video_token_id = ids.video
    return qwen


# offsets from the build's seed of parts built from a seed of their own
_PART_SEED_OFFSETS = {"retrieval": 2_000_003}


@contextlib.contextmanager
def part_seed(part: str):
    """Random weights of `part` from a seed of its own (the enclosing build's seed + a fixed offset),
    whatever was built before it; the caller's random state is left as it was."""
    seed = torch.initial_seed() + _PART_SEED_OFFSETS[part]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_clip_text(config: LavidaConfig, tokenizer: PreTrainedTokenizerBase, folder: Path | None, *, dtype: torch.dtype) -> CLIPTextModel:
    """The CLIP text tower: from a CLIP folder, or random (from the build's random stream)."""
    if folder is None:
        return CLIPTextModel(
            clip_text_config(
                config.text_encoder, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id
            )
        )
    try:
        with _quiet_transformers():
            clip, info = CLIPTextModel.from_pretrained(
                str(folder), output_loading_info=True, local_files_only=True, dtype=dtype, ignore_mismatched_sizes=True
            )
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot load the CLIP folder {folder}: {error}") from error
    _raise_on_loading_info(info, source=folder, allowed_unexpected=CLIP_UNUSED_KEY_PREFIXES)
    return clip


def build_retrieval(config: RetrievalConfig | None, text_dim: int, folder: Path | None, *, dtype: torch.dtype) -> ClipRetrieval | None:
    """The search part (CLIP image tower + projections), or None when the config has none: from a
    CLIP folder, strictly (every `vision_model.*`, `visual_projection`, `text_projection`,
    `logit_scale` key, each of this config's shape), or random from its own seed (`part_seed`)."""
    if config is None:
        return None
    if folder is None:
        with part_seed("retrieval"):
            return ClipRetrieval(config, text_dim=text_dim)
    with _empty_if(True):
        retrieval = ClipRetrieval(config, text_dim=text_dim)
    try:
        with _quiet_transformers():
            clip, info = CLIPModel.from_pretrained(
                str(folder), output_loading_info=True, local_files_only=True, dtype=dtype, ignore_mismatched_sizes=True
            )
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot load the CLIP folder {folder}: {error}") from error
    _raise_on_loading_info(info, source=folder, allowed_unexpected=())
    state = {k: v for k, v in clip.state_dict().items() if k.startswith(RETRIEVAL_KEY_PREFIXES)}
    _load_strict(retrieval, state, source=folder)
    return retrieval


RETRIEVAL_KEY_PREFIXES = CLIP_UNUSED_KEY_PREFIXES  # the CLIP keys of the retrieval part


@contextlib.contextmanager
def _quiet_transformers():
    """transformers logs its own key report while loading; ours (an exception naming keys) replaces it."""
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def _raise_on_loading_info(info: dict, *, source: Path, allowed_unexpected: tuple[str, ...]) -> None:
    missing = sorted(info.get("missing_keys", []))
    unexpected = sorted(k for k in info.get("unexpected_keys", []) if not k.startswith(allowed_unexpected))
    mismatched = [str(m[0]) if isinstance(m, tuple) else str(m) for m in info.get("mismatched_keys", [])]
    _raise_if_keys_wrong(source, missing, unexpected, mismatched)


def _raise_if_keys_wrong(source: object, missing: list[str], unexpected: list[str], mismatched: list[str]) -> None:
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if keys:
            shown = ", ".join(keys[:8]) + (f" … (+{len(keys) - 8} more)" if len(keys) > 8 else "")
            problems.append(f"{len(keys)} {label} key(s): {shown}")
    if problems:
        raise CheckpointError(f"checkpoint {source} does not fit this model: " + "; ".join(problems))


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], *, source: object) -> None:
    """Every key of `module` from `state`, assigned (the module may have been built empty)."""
    own = module.state_dict()
    check_keys(source, expected={k: tuple(v.shape) for k, v in own.items()}, given={k: tuple(v.shape) for k, v in state.items()})
    module.load_state_dict(state, strict=True, assign=True)


def check_keys(source: object, *, expected: dict[str, tuple], given: dict[str, tuple]) -> None:
    """CheckpointError naming the missing, unexpected and wrong-shape keys of `given` against `expected` (name -> shape)."""
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(given) if expected[k] != given[k])
    _raise_if_keys_wrong(source, missing, unexpected, mismatched)


def load_sam2_checkpoint(segmenter: Segmenter, path: Path) -> None:
    """Load an official SAM2/SAM2.1 `.pt` ({"model": state_dict}), skipping only video-memory keys."""
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"cannot read SAM2 checkpoint {path}: {str(error).splitlines()[0]}") from error
    state = payload.get("model", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"SAM2 checkpoint {path} holds no state dict (expected {{'model': state_dict}})")
    used = {k: v for k, v in state.items() if not k.startswith(SAM2_UNUSED_KEY_PREFIXES)}
    _load_strict(segmenter, used, source=path)


def trained_part_keys(model: LavidaModel) -> list[str]:
    return [k for k in model.state_dict() if any(p in k for p in TRAINED_PART_PATTERNS)]


def load_trained_parts(model: LavidaModel, path: Path, *, device: torch.device, dtype: torch.dtype) -> None:
    """LAVIDA's own trained parts: exactly the keys of `trained_part_keys`, no more, no fewer, each
    tensor read straight to `device` in `dtype` (floating ones) and assigned (the part may be empty)."""
    own = model.state_dict()
    expected = {k: tuple(own[k].shape) for k in trained_part_keys(model)}
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as file:
            check_keys(path, expected=expected, given={key: tuple(file.get_slice(key).get_shape()) for key in file.keys()})
            state = {key: _cast(file.get_tensor(key), dtype) for key in expected}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read safetensors file {path}: {error}") from error
    model.load_state_dict(state, strict=False, assign=True)


def save_trained_parts(model: LavidaModel, path: Path) -> None:
    state = model.state_dict()
    save_file({k: state[k].detach().contiguous().cpu() for k in trained_part_keys(model)}, str(path))


def save_lavida(loaded: LoadedLavida, folder: Path, *, base: Checkpoint | None = None) -> None:
    """A model folder: lavida.json (config, model card) and the weights, in one of two forms.

    Self-contained (base None): model.safetensors holds every weight (the shipped demo model).
    Small (base: the Qwen2-VL folder, CLIP folder and SAM2.1 .pt the model was built from): only
    LAVIDA's trained parts (trained.safetensors, `trained_part_keys`), and lavida.json names each
    base file with its size and a content fingerprint, so that a swapped base is refused at load;
    the form fine-tunes ship in (a PEFT adapter references its base the same way)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "trained": loaded.trained,
        "card": loaded.card.to_dict(),
        "config": loaded.model.config.to_dict(),
    }
    bases = {part: getattr(base, part) for part in BASE_PARTS if base is not None and getattr(base, part) is not None}
    if base is not None and len(bases) < len(BASE_PARTS):
        missing = [part for part in BASE_PARTS if part not in bases]
        raise CheckpointError(f"a small model folder references every frozen part; the base lacks {missing} (save it self-contained)")
    if bases:
        save_trained_parts(loaded.model, folder / TRAINED_FILE)
        meta["base"] = {part: {"path": str(Path(path).resolve()), **fingerprint(Path(path))} for part, path in bases.items()}
    else:
        state = {k: v.detach().contiguous().cpu() for k, v in loaded.model.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))


BASE_PARTS = ("qwen_dir", "clip_dir", "sam2_path")  # the Checkpoint fields a small model folder references
TRAINED_FILE = "trained.safetensors"
FINGERPRINT_BYTES = 1 << 20  # of each file's start and end: headers (names, shapes, offsets) and data


def fingerprint(path: Path) -> dict:
    """{"size", "sha256"} of a base checkpoint (a file, or a folder's non-hidden files): the total size
    and a hash of each file's name, size, first and last MiB. Sampled, not the whole content: a full
    hash of a 16 GB Qwen2-VL folder would cost every actor a minute at each load, and any other
    checkpoint differs within those bytes (safetensors and torch headers name every tensor)."""
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith(".")) if Path(path).is_dir() else [Path(path)]
    digest, total = hashlib.sha256(), 0
    for file in files:
        size = file.stat().st_size
        total += size
        name = str(file.relative_to(path)) if Path(path).is_dir() else ""  # a single file may be renamed
        digest.update(f"{name}\0{size}\0".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            if size > 2 * FINGERPRINT_BYTES:
                handle.seek(size - FINGERPRINT_BYTES)
                digest.update(handle.read(FINGERPRINT_BYTES))
    return {"size": total, "sha256": digest.hexdigest()}


def base_checkpoint(folder: Path, bases: dict, overrides: dict[str, Path] | None) -> Checkpoint:
    """The Checkpoint of a small model folder: its bases (at their recorded paths, or where `overrides`
    says they are mounted), each checked against its recorded size and fingerprint, + its trained parts."""
    unknown = sorted(set(overrides or {}) - set(BASE_PARTS))
    if unknown:
        raise CheckpointError(f"--model-base {unknown}: not a base part; use {', '.join(BASE_PARTS)}")
    paths = {}
    for part, recorded in bases.items():
        path = Path((overrides or {}).get(part) or recorded["path"])
        if not path.exists():
            raise CheckpointError(
                f"{folder} needs its base {part} at {path}, which is missing: mount it there or give --model-base {part}=PATH"
            )
        found = fingerprint(path)
        if found != {"size": recorded["size"], "sha256": recorded["sha256"]}:
            raise CheckpointError(
                f"the base {part} at {path} is not the one {folder} was trained from "
                f"(size {found['size']} vs {recorded['size']}, fingerprint differs): give the original with --model-base {part}=PATH"
            )
        paths[part] = path
    return Checkpoint(**paths, trained_path=folder / TRAINED_FILE)


def load_lavida(
    folder: Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    base_paths: dict[str, Path] | None = None,
) -> LoadedLavida:
    """Load a model folder written by `save_lavida` (or by `lavida train`), in either form; a small
    one's bases are read from `base_paths` where given (a cluster mounts them elsewhere)."""
    folder = Path(folder)
    meta = read_meta(folder)
    config = LavidaConfig.from_dict(meta["config"])
    if "base" in meta:
        checkpoint = base_checkpoint(folder, meta["base"], base_paths)
    else:
        checkpoint = Checkpoint(full_path=folder / WEIGHTS_FILE)
    loaded = build_lavida(config, checkpoint, device=device, dtype=dtype)
    loaded.trained = bool(meta.get("trained", False))
    loaded.card = ModelCard.from_meta(meta)
    return loaded


def build_empty_parts(config: LavidaConfig, clip_tokenizer: PreTrainedTokenizerBase) -> tuple[TextEncoder, ClipRetrieval]:
    """The CLIP text tower and the retrieval part alone, on the meta device (a file fills them)."""
    with _empty_if(True):
        text_encoder = TextEncoder(build_clip_text(config, clip_tokenizer, None, dtype=torch.float32))
        return text_encoder, ClipRetrieval(config.retrieval, text_dim=text_encoder.dim)
