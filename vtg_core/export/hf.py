"""Export a checkpoint as a Hugging Face model folder: merged weights, or the adapter alone.

- ``merge_lora=True`` (LoRA checkpoints): the adapter is merged into its base through the
  backend's ``merge_and_export``; the folder then loads with
  ``AutoModelForImageTextToText.from_pretrained`` + ``AutoProcessor.from_pretrained`` alone
  (safetensors weights, processor with any added tokens, chat template, generation config).
- otherwise: the adapter, processor and generation config are copied as they are (loads with
  peft on top of the base); a full fine-tune is already a plain model folder and is copied.

Either way the folder gets ``vtg_config.yaml`` (so ``vtg eval`` / ``vtg predict`` on the export
sample frames as in training), an updated ``vtg_checkpoint.json`` and a model card (``README.md``)
stating the task, answer format, base model, frame sampling and training configuration.

The export is written into a hidden sibling folder and renamed into place at the end, so a crash
leaves nothing under the output name. Pushing to the Hub happens only when asked for.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..backends.checkpoint import CHECKPOINT_META, CONFIG_FILE, read_checkpoint_meta
from ..errors import ConfigError, VtgError

log = logging.getLogger(__name__)

# Trainer bookkeeping in intermediate checkpoint-N folders: useless (and large) in a model folder.
_SKIP = frozenset({"optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin", "README.md",
                   "scaler.pt"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _copyable(entry: Path) -> bool:
    return (entry.is_file() and not entry.name.startswith(".") and entry.name not in _SKIP
            and not entry.name.startswith("rng_state"))


def _looks_like_hub_id(name: str | None) -> bool:
    return bool(name) and not os.path.exists(name) and bool(_HUB_ID.match(name))


def _load_config(checkpoint: Path) -> Any:
    from ..config import default_config, load_config

    path = checkpoint / CONFIG_FILE
    return load_config([path]) if path.is_file() else default_config("sft")


def export_checkpoint(checkpoint: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
                      merge_lora: bool = False, base_model: str | None = None, overwrite: bool = False,
                      push_to_hub: str | None = None, private: bool = True) -> str:
    """Export ``checkpoint`` to ``output_dir`` (see the module docstring); returns the folder.

    ``base_model`` replaces the base recorded in the adapter (a local training path is useless to
    anyone else: give the Hub id). ``overwrite`` replaces an existing ``output_dir`` (atomically).
    ``push_to_hub`` uploads the finished folder to that repo (needs ``huggingface_hub``).
    """
    ckpt = Path(checkpoint)
    if not ckpt.is_dir():
        raise ConfigError(f"checkpoint folder not found: {ckpt}")
    try:
        meta = read_checkpoint_meta(ckpt)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    final = Path(output_dir).resolve()
    if final == ckpt.resolve() or ckpt.resolve() in final.parents:
        raise ConfigError(f"--output-dir {final} is inside the checkpoint {ckpt}; export somewhere else")
    if final.exists() and any(final.iterdir()) and not overwrite:
        raise ConfigError(f"{final} already exists and is not empty; pass --overwrite to replace it")
    if push_to_hub:
        _hub_api()  # fail before minutes of merging, not after
    config = _load_config(ckpt)
    kind = meta.get("kind")
    merged = merge_lora and kind == "lora"
    if merge_lora and kind != "lora":
        log.info("%s is a %s checkpoint, not LoRA: there is nothing to merge; copying it", ckpt, kind)

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        if merged:
            _merge(ckpt, tmp, config, base_model)
        else:
            for entry in sorted(ckpt.iterdir()):
                if _copyable(entry):
                    shutil.copy2(entry, tmp / entry.name)
            if base_model and kind == "lora":
                adapter_cfg = tmp / "adapter_config.json"
                data = json.loads(adapter_cfg.read_text())
                data["base_model_name_or_path"] = base_model
                adapter_cfg.write_text(json.dumps(data, indent=2) + "\n")
        new_meta = {**meta, "kind": "full" if merged else kind,
                    "base_model": base_model or meta.get("base_model"),
                    "exported_from": {"path": str(ckpt.resolve()), "kind": kind, "merged": merged}}
        (tmp / CHECKPOINT_META).write_text(json.dumps(new_meta, indent=2) + "\n")
        if (ckpt / CONFIG_FILE).is_file():
            shutil.copy2(ckpt / CONFIG_FILE, tmp / CONFIG_FILE)
        (tmp / "README.md").write_text(model_card(config, new_meta, merged=merged), encoding="utf-8")
        _check_complete(tmp, merged=merged, kind=kind)
        _move_into_place(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if push_to_hub:
        _push(final, push_to_hub, private=private)
    return str(final)


def _merge(ckpt: Path, out: Path, config: Any, base_model: str | None) -> None:
    from ..evaluate.loading import build_backend

    backend = build_backend(config)
    kwargs = {"base_model": base_model} if base_model else {}
    backend.merge_and_export(str(ckpt), str(out), **kwargs)


def _check_complete(folder: Path, *, merged: bool, kind: str | None) -> None:
    names = {p.name for p in folder.iterdir()}
    if merged or kind == "full":
        weights = {n for n in names if n.endswith(".safetensors")}
        needed = {"config.json", "generation_config.json"}
    else:
        weights = {n for n in names if n == "adapter_model.safetensors"}
        needed = {"adapter_config.json"}
    missing = sorted(needed - names) + ([] if weights else ["*.safetensors weights"])
    if not any(n in names for n in ("tokenizer.json", "tokenizer_config.json")):
        missing.append("tokenizer files")
    if missing:
        raise VtgError(f"the export is incomplete (missing {', '.join(missing)}); the checkpoint it was made from "
                       "lacks them. Nothing was written to the output folder.")


def _move_into_place(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _hub_api() -> Any:
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise ConfigError("--push-to-hub needs the huggingface_hub package (pip install huggingface_hub)") from exc
    return HfApi()


def _push(folder: Path, repo_id: str, *, private: bool) -> None:
    api = _hub_api()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload model exported by vtg")
    log.info("pushed %s to https://huggingface.co/%s", folder, repo_id)


# -- the model card ----------------------------------------------------------------------------------

def _task_text(config: Any) -> tuple[str, str | None, str | None]:
    """(description, an example prompt, an example answer) of the checkpoint's task."""
    description = config.task
    try:
        from ..plugins import get_registry

        description = get_registry().get("task", config.task).description
    except VtgError:
        return description, None, None
    try:
        from ..data.sample import Sample
        from ..train.run import build_task

        task = build_task(config)
        example = Sample(id="example", video="clip.mp4", duration=30.0, query="the person opens the door",
                         answer=(12.5, 15.0))
        messages = task.build_messages(example)
        prompt = "\n".join(part.get("text", "<video>") if isinstance(part, dict) else str(part)
                           for m in messages for part in (m["content"] if isinstance(m["content"], list)
                                                          else [{"text": m["content"]}]))
        return description, prompt, task.target(example)
    except Exception as exc:  # a plugin task that cannot render the example still gets a card
        log.debug("no example prompt for the model card: %s", exc)
        return description, None, None


def model_card(config: Any, meta: dict[str, Any], *, merged: bool) -> str:
    """README.md text: front matter for the Hub, then task, usage, frames and training config."""
    from ..config.loader import dump_yaml

    base = meta.get("base_model")
    kind = meta.get("kind")
    adapter = kind == "lora"
    front = ["---", f"library_name: {'peft' if adapter else 'transformers'}", "pipeline_tag: image-text-to-text"]
    if _looks_like_hub_id(base):
        front.append(f"base_model: {base}")
    front += ["tags:", "- vtg", "- video", f"- {config.task.replace('_', '-')}"]
    if adapter:
        front.append("- lora")
    front.append("---")
    description, prompt, answer = _task_text(config)
    v = config.video
    resolution = f"{v.resolution.height}x{v.resolution.width}" if v.resolution is not None and not v.max_pixels \
        else f"max {v.max_pixels} pixels per frame"
    what = ("LoRA merged into the base weights" if merged else "LoRA adapter" if adapter else "full fine-tune")
    lines = [*front, "", f"# {config.task} model ({what})", "",
             f"Fine-tuned with vtg {meta.get('vtg_version', '')} from base model "
             f"`{base}` ({meta.get('family', meta.get('model_type', '?'))} family).", "",
             "## Task", "", f"**{config.task}**: {description}", ""]
    if prompt:
        lines += ["Prompt (the video comes first in the user turn):", "", "```text", prompt, "```", "",
                  "Answer format, as the model was trained to write it:", "", "```text", answer or "", "```", ""]
    if config.task == "temporal_grounding":
        t = config.temporal
        unit = (f"temporal tokens <0>..<{t.num_bins - 1}>" if t.use_temporal_tokens
                else "fractions of the clip (0-1)" if t.use_relative_timestamps else "seconds")
        lines += [f"Times in answers are {unit}.", ""]
    lines += ["## Frames", "", "Feed frames the way the model was trained:", "",
              "| setting | value |", "|---|---|",
              f"| sampling strategy | {v.sampling_strategy} |", f"| max frames | {v.max_frames} |",
              f"| fps | {v.fps or 'none (max frames spread over the clip)'} |", f"| frame size | {resolution} |", ""]
    lines += ["## Use", ""]
    if adapter:
        lines += ["```python", "from peft import PeftModel",
                  "from transformers import AutoModelForImageTextToText, AutoProcessor", "",
                  f'base = AutoModelForImageTextToText.from_pretrained("{base}")',
                  'processor = AutoProcessor.from_pretrained("path/to/this/folder")']
        if meta.get("vocab_size"):
            lines.append(f"base.resize_token_embeddings({meta['vocab_size']})  # only if tokens were added "
                         "(this folder's tokenizer has them)")
        lines += ['model = PeftModel.from_pretrained(base, "path/to/this/folder")', "```", ""]
    else:
        lines += ["```python", "from transformers import AutoModelForImageTextToText, AutoProcessor", "",
                  'model = AutoModelForImageTextToText.from_pretrained("path/to/this/folder")',
                  'processor = AutoProcessor.from_pretrained("path/to/this/folder")', "```", ""]
    lines += ["With vtg, which samples frames and parses answers as in training:", "", "```bash",
              'vtg predict --model path/to/this/folder --video clip.mp4 --query "the person opens the door"',
              "vtg eval --model path/to/this/folder --data test.jsonl --video-dir videos", "```", ""]
    tr, lora = config.training, config.lora
    lines += ["## Training configuration", "", "| setting | value |", "|---|---|",
              f"| learning rate | {tr.learning_rate} (projector {tr.mm_projector_lr}, vision tower "
              f"{tr.vision_tower_lr}, head {tr.head_lr}) |",
              f"| batch size per device x accumulation | {tr.per_device_train_batch_size} x "
              f"{tr.gradient_accumulation_steps} |",
              f"| epochs / max steps | {tr.num_train_epochs} / {tr.max_steps} |",
              f"| seed | {tr.seed} |"]
    if lora.enabled:
        lines.append(f"| LoRA | r={lora.r}, alpha={lora.lora_alpha}, dropout={lora.lora_dropout}, "
                     f"targets={lora.target_modules} |")
    lines += ["", "The complete resolved configuration (`vtg_config.yaml`, also in this folder):", "",
              "```yaml", dump_yaml(config).rstrip(), "```", ""]
    return "\n".join(lines)
