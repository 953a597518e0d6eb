"""A few SFT then GRPO steps of the tiny model on generated clips through one backend: time per
step and peak GPU memory. The GPU tests and ``benchmarks/bench_unsloth_vs_transformers.py`` use
it to put the ``unsloth`` and ``transformers`` backends side by side on the same work.

Both backends get the same config: LoRA (r 8) on the language model's attention, frozen vision
tower, trained projector, 4 frames of 32x32, batch 2, ``steps`` optimizer steps each; GRPO starts
from the SFT checkpoint with 2 generations of at most 16 tokens.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def step_overrides(backend: str, model_dir: str, steps: int, *, cuda: bool) -> list[str]:
    return [
        f"model.name_or_path={model_dir}", f"model.backend={backend}",
        f"model.torch_dtype={'bfloat16' if cuda else 'float32'}", "model.attn_implementation=sdpa",
        "model.gradient_checkpointing=true", "lora.enabled=true", "lora.r=8", "lora.lora_alpha=16",
        "lora.lora_dropout=0.0", "video.max_frames=4", "video.resolution={height: 32, width: 32}",
        "training.learning_rate=1e-3", "training.mm_projector_lr=1e-4", f"training.max_steps={steps}",
        "training.per_device_train_batch_size=2", "training.gradient_accumulation_steps=1",
        "training.logging_steps=1", "training.save_steps=100000", "training.eval_strategy='no'",
        f"training.bf16={'true' if cuda else 'false'}", "dataloader.num_workers=0",
        "rl.num_generations=2", "rl.max_completion_length=16", "rl.max_prompt_length=null",
    ]


def run_steps(backend: str, workdir: str | os.PathLike[str], *, steps: int = 2, seed: int = 0) -> dict[str, Any]:
    """SFT ``steps`` steps, then GRPO ``steps`` steps from its checkpoint, with ``backend``.

    Returns seconds per step (the Trainer's own runtime, model loading excluded), peak GPU memory
    in MiB (None on a CPU), the logged SFT losses and GRPO rewards, and both checkpoints.
    """
    import torch

    from vtg_core.config import default_config
    from vtg_core.data.synthetic import make_grounding_dataset
    from vtg_core.plugins import get_registry
    from vtg_core.testing import save_tiny_model
    from vtg_core.train.grpo import run_grpo
    from vtg_core.train.run import build_task, load_split
    from vtg_core.train.sft import run_sft

    work = Path(workdir)
    cuda = torch.cuda.is_available()
    data = make_grounding_dataset(work / "data", num_train=2 * steps * 2, num_val=2, seed=seed,
                                  duration_range=(3, 4), fps=4, size=(32, 32))
    model_dir = save_tiny_model(work / "base", seed=seed)
    sets = step_overrides(backend, model_dir, steps, cuda=cuda)
    out: dict[str, Any] = {"backend": backend, "device": torch.cuda.get_device_name() if cuda else "cpu"}
    impl = get_registry().get("backend", backend).load()()

    for stage in ("sft", "rl"):
        config = default_config(stage, [*sets, f"dataset.annotation_file={data['train']}",
                                        f"dataset.video_dir={data['video_dir']}"])
        task = build_task(config)
        samples = load_split(task, data["train"], config, data["video_dir"])
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        if stage == "sft":
            result = run_sft(config, task=task, train_samples=samples, output_dir=str(work / f"{backend}-sft"),
                             backend=impl)
            out["sft_checkpoint"] = result.checkpoint
            out["sft_losses"] = [h["loss"] for h in result.log_history if "loss" in h]
        else:
            result = run_grpo(config, task=task, train_samples=samples, output_dir=str(work / f"{backend}-grpo"),
                              backend=impl, sft_checkpoint=out["sft_checkpoint"])
            out["grpo_checkpoint"] = result.checkpoint_dir
            out["grpo_rewards"] = [h["reward"] for h in result.log_history if "reward" in h]
        wall = time.perf_counter() - start
        name = "sft" if stage == "sft" else "grpo"
        runtime = float(result.metrics.get("train_runtime", wall))
        out[f"{name}_s_per_step"] = runtime / steps
        out[f"{name}_wall_s"] = wall
        out[f"{name}_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return out
