"""Model families the transformers backend knows, and where each keeps its parts.

One table says, per family, which parameter names belong to the vision tower, to the
vision-language projector and to the output head. LoRA targeting, freezing and the per-module
learning rates all read it, so adding a family means adding one row here (plus its video inputs
in :mod:`vtg_core.backends.video_inputs`).

Pure Python: no torch import.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from ..errors import ConfigError


@attrs.frozen
class FamilyLayout:
    """Where a family keeps its parts, as module-name regexes matched with ``re.search``.

    ``projector`` is tested before ``vision`` since Qwen nests its merger inside the vision module.
    ``video_input`` says how video reaches the model: ``metadata`` (Qwen3-VL: frame timestamps are
    written into the prompt from ``video_metadata``), ``fps`` (Qwen2.5-VL: the sampling rate sets
    M-RoPE's temporal spacing via ``second_per_grid_ts``), ``frames`` (InternVL: frames only).
    """

    name: str
    model_types: tuple[str, ...]
    vision: str
    projector: str
    video_input: str

    def role(self, name: str) -> str:
        """``"projector"``, ``"vision_tower"``, ``"head"`` or ``"language_model"`` for a parameter/module name."""
        if re.search(self.projector, name):
            return "projector"
        if re.search(self.vision, name):
            return "vision_tower"
        if re.search(_HEAD, name):
            return "head"
        return "language_model"


# lm_head and the input embeddings (and peft's wrappers around them) train at ``head_lr``.
_HEAD = r"(^|\.)(lm_head|embed_tokens)(\.|$)"

FAMILIES: dict[str, FamilyLayout] = {
    layout.name: layout
    for layout in (
        FamilyLayout(
            name="qwen3_vl",
            model_types=("qwen3_vl", "qwen3_vl_moe"),
            vision=r"(^|\.)visual(\.|$)",
            projector=r"(^|\.)visual\.(merger|deepstack_merger_list)(\.|$)",
            video_input="metadata",
        ),
        FamilyLayout(
            name="qwen2_5_vl",
            model_types=("qwen2_5_vl", "qwen2_vl"),
            vision=r"(^|\.)visual(\.|$)",
            projector=r"(^|\.)visual\.merger(\.|$)",
            video_input="fps",
        ),
        FamilyLayout(
            name="internvl",
            model_types=("internvl",),
            vision=r"(^|\.)vision_tower(\.|$)",
            projector=r"(^|\.)multi_modal_projector(\.|$)",
            video_input="frames",
        ),
    )
}


def family_of(model_or_config: Any) -> FamilyLayout:
    """The layout for a model, a transformers config, or a ``model_type`` string.

    Accepts a peft-wrapped model too. Raises :class:`ConfigError` naming the supported families.
    """
    obj = model_or_config
    if isinstance(obj, str):
        model_type = obj
    else:
        config = getattr(obj, "config", obj)
        model_type = getattr(config, "model_type", None)
        # peft's PeftModel forwards .config to the base model; the base model may be nested once more.
        if model_type is None and hasattr(obj, "get_base_model"):
            model_type = getattr(obj.get_base_model().config, "model_type", None)
    for layout in FAMILIES.values():
        if model_type in layout.model_types:
            return layout
    supported = ", ".join(t for layout in FAMILIES.values() for t in layout.model_types)
    raise ConfigError(
        f"model type {model_type!r} is not supported by the transformers backend "
        f"(supported model types: {supported}); pick a Qwen3-VL, Qwen2.5-VL or InternVL3 checkpoint "
        "or a backend plugin that handles this family"
    )
