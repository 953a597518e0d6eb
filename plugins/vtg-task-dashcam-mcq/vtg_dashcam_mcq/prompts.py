"""Prompts in the question's language (Vietnamese or English) listing the choices, and the SFT target.

Language detection: a question (with its choices) is Vietnamese when it holds a letter only
Vietnamese uses among the Latin scripts (``đ``, ``ơ``, ``ư``, ``ă`` and the stacked-tone vowels of
Unicode's Latin Extended Additional block, ``ạ ả ấ ầ ... ỹ``) or, lacking those, at least two
Vietnamese function words; otherwise English. Road Buddy questions are mostly Vietnamese.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from vtg_core.data.sample import Sample

LANGUAGES = ("vi", "en")

_VI_LETTERS = re.compile(r"[đĐơƠưƯăĂ\u1ea0-\u1ef9]")
_VI_WORDS = {"của", "có", "không", "là", "xe", "đường", "được", "trong", "phía", "người", "những", "này",
             "khi", "cho", "bao", "nhiêu", "nào", "gì", "với", "và"}

PROMPTS = {
    "vi": {
        "intro": "Dưới đây là video từ camera hành trình của một xe ô tô. Hãy trả lời câu hỏi trắc nghiệm về "
                 "tình huống giao thông trong video.",
        "question": "Câu hỏi",
        "choices": "Các lựa chọn",
        "instruction": "Chỉ trả lời bằng một chữ cái ({letters}).",
    },
    "en": {
        "intro": "Here is a video from a car's dashcam. Answer the multiple-choice question about the traffic "
                 "situation in the video.",
        "question": "Question",
        "choices": "Options",
        "instruction": "Answer with a single letter ({letters}).",
    },
}


def detect_language(text: str) -> str:
    """``"vi"`` or ``"en"`` (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    if _VI_LETTERS.search(text):
        return "vi"
    words = set(re.findall(r"\w+", text.casefold()))
    return "vi" if len(words & _VI_WORDS) >= 2 else "en"


def sample_language(sample: Sample, setting: str = "auto") -> str:
    """The prompt language of ``sample``: ``setting`` when fixed, else detected from question + choices."""
    if setting in LANGUAGES:
        return setting
    return detect_language(" ".join([sample.query, *sample.inputs.get("choices", ())]))


def user_prompt(question: str, letters: Sequence[str], choices: Sequence[str], language: str) -> str:
    p = PROMPTS[language]
    listed = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, choices, strict=True))
    joined = ", ".join(letters)
    return (f"{p['intro']}\n{p['question']}: {question}\n{p['choices']}:\n{listed}\n"
            f"{p['instruction'].format(letters=joined)}")


def build_messages(sample: Sample, *, language: str = "auto", system_prompt: str | None = None
                   ) -> list[dict[str, Any]]:
    """``[system?, user]``; the user turn holds ``{"type": "video"}`` then the text."""
    lang = sample_language(sample, language)
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    text = user_prompt(sample.query, sample.inputs["letters"], sample.inputs["choices"], lang)
    messages.append({"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]})
    return messages


def target(sample: Sample) -> str:
    """The answer SFT trains on: the letter alone, as the prompt asks."""
    return str(sample.answer)
