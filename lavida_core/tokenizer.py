"""Tokenizers for the two text inputs, and the LAVIDA prompt.

A real checkpoint brings its own tokenizers (the Qwen2-VL and CLIP Hugging Face folders). A preset
built from its config has none to download, so it uses a byte-level tokenizer built here: every UTF-8
byte is one token, plus the special tokens the model needs. The fallback vocabulary sizes are part of
the `tiny` preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from lavida_core.errors import CheckpointError

SEG_TOKEN = "<SEG>"
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    SEG_TOKEN,
)
CLIP_SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
QWEN_FALLBACK_VOCAB_SIZE = 256 + len(QWEN_SPECIAL_TOKENS)
CLIP_FALLBACK_VOCAB_SIZE = 256 + len(CLIP_SPECIAL_TOKENS)
CLIP_MAX_LENGTH = 77

SYSTEM_PROMPT = "You are a helpful assistant."
# The reference's wording (dataset/messages_template.py), kept verbatim, spaces and "sceen" included:
# a model trained on these strings is asked with them. {kind} is "video" or "image".
REFERENCE_QUESTIONS = (
    "Can you segment the anomalies in this {kind}? Anomalies include {types}. ",
    "Please segment the anomalies in this {kind}. Abnormal cases contain {types}. ",
    "Detect anomalies in this {kind}. Target types: {types}. ",
    "Monitor anomalies in this sceen. Anomalies include {types}. ",
    "Segment abnormal events in this sceen. Abnormal events include {types}. ",
)
REFERENCE_ANSWERS = (
    f"It is {SEG_TOKEN}.",
    f"Sure, {SEG_TOKEN}.",
    f"Sure, it is {SEG_TOKEN}.",
    f"Sure, the segmentation result is {SEG_TOKEN}.",
    f"{SEG_TOKEN}.",
)
# The one prompt of models trained before the reference's templates (the shipped demo model).
QUESTION = "Detect anomalies in this {kind}. Target types: {types}."
ANSWER = f"It is {SEG_TOKEN}."
# LavidaConfig.prompt_templates -> (questions, answers); a clip gets one of each, drawn uniformly.
PROMPT_TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "reference": (REFERENCE_QUESTIONS, REFERENCE_ANSWERS),
    "fixed": ((QUESTION,), (ANSWER,)),
}
VISUAL_KINDS = ("video", "image")


def byte_level_tokenizer(special_tokens: tuple[str, ...], wrap: tuple[str, str] | None = None) -> PreTrainedTokenizerFast:
    """A tokenizer with one token per byte (ids 0..255) and the given special tokens after them.

    wrap: (begin, end) special tokens put around every encoded text, as CLIP's tokenizer does.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab.update({token: len(alphabet) + i for i, token in enumerate(special_tokens)})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.add_special_tokens(list(special_tokens))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    if wrap is not None:
        begin, end = wrap
        core.post_processor = processors.TemplateProcessing(
            single=f"{begin} $A {end}", special_tokens=[(begin, vocab[begin]), (end, vocab[end])]
        )
    return PreTrainedTokenizerFast(tokenizer_object=core)


def load_qwen_tokenizer(folder: str | Path | None) -> PreTrainedTokenizerBase:
    """Qwen2-VL's tokenizer from a Hugging Face folder (with <SEG> added), or the byte-level fallback."""
    if folder is None:
        tokenizer = byte_level_tokenizer(QWEN_SPECIAL_TOKENS)
        tokenizer.pad_token = "<|endoftext|>"
        return tokenizer
    tokenizer = _from_folder(folder, "Qwen2-VL")
    tokenizer.add_tokens([SEG_TOKEN])
    return tokenizer


def load_clip_tokenizer(folder: str | Path | None) -> PreTrainedTokenizerBase:
    if folder is None:
        begin, end = CLIP_SPECIAL_TOKENS
        tokenizer = byte_level_tokenizer(CLIP_SPECIAL_TOKENS, wrap=(begin, end))
        tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = begin, end, end
        return tokenizer
    return _from_folder(folder, "CLIP")


def _from_folder(folder: str | Path, what: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read the {what} tokenizer from {folder}: {first_line}") from error


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the model looks for in its input."""

    video: int
    seg: int
    pad: int
    image: int = -1  # -1: a tokenizer without image placeholders (never matches a token)

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> SpecialIds:
        ids = tokenizer.convert_tokens_to_ids(["<|video_pad|>", SEG_TOKEN, "<|endoftext|>", "<|image_pad|>"])
        return cls(video=ids[0], seg=ids[1], pad=ids[2], image=ids[3])


@dataclass(frozen=True)
class PromptIds:
    input_ids: torch.Tensor  # [L] long
    answer_mask: torch.Tensor  # [L] bool: the assistant answer (what the LM loss is computed on)


def choose_prompt(templates: str, rng: np.random.Generator) -> tuple[str, str]:
    """One (question, answer) template pair of the set `templates` (PROMPT_TEMPLATES), drawn uniformly."""
    questions, answers = PROMPT_TEMPLATES[templates]
    return questions[int(rng.integers(len(questions)))], answers[int(rng.integers(len(answers)))]


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    anomaly_types: list[str],
    n_visual_tokens: int,
    *,
    question: str = QUESTION,
    answer: str = ANSWER,
    kind: str = "video",
) -> PromptIds:
    """Token ids of the chat: system turn, user turn (visual placeholders + question), answer with <SEG>.

    kind: "video" (video placeholders) or "image" (image placeholders, "image" in the question)."""
    if kind not in VISUAL_KINDS:
        raise ValueError(f"kind must be one of {VISUAL_KINDS}, got {kind!r}")
    question = question.format(kind=kind, types=", ".join(anomaly_types))
    before_visual = f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n<|vision_start|>"
    after_visual = f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"
    answer = f"{answer}<|im_end|>\n"
    placeholder = tokenizer.convert_tokens_to_ids(f"<|{kind}_pad|>")
    pieces = [
        tokenizer.encode(before_visual, add_special_tokens=False),
        [placeholder] * n_visual_tokens,
        tokenizer.encode(after_visual, add_special_tokens=False),
    ]
    answer_ids = tokenizer.encode(answer, add_special_tokens=False)
    prompt_len = sum(len(p) for p in pieces)
    ids = torch.tensor([i for p in pieces for i in p] + answer_ids, dtype=torch.long)
    answer_mask = torch.zeros(len(ids), dtype=torch.bool)
    answer_mask[prompt_len:] = True
    return PromptIds(input_ids=ids, answer_mask=answer_mask)


def encode_anomaly_types(tokenizer: PreTrainedTokenizerBase, anomaly_types: list[str]) -> dict[str, torch.Tensor]:
    """CLIP text-encoder input for a list of names: input_ids and attention_mask [n, L]."""
    batch = tokenizer(list(anomaly_types), padding=True, truncation=True, max_length=CLIP_MAX_LENGTH, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
