"""SFT: dataset + collator masking, what trains and what stays frozen, loss going down, checkpoints."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vtg_core import testing  # noqa: E402
from vtg_core.config import VtgConfig  # noqa: E402
from vtg_core.data.sample import Sample  # noqa: E402
from vtg_core.data.video import Frames  # noqa: E402
from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask  # noqa: E402
from vtg_core.train.collate import IGNORE_INDEX, VideoCollator  # noqa: E402
from vtg_core.train.dataset import VideoSampleDataset  # noqa: E402
from vtg_core.train.sft import run_sft, training_arguments  # noqa: E402

pytestmark = pytest.mark.torch



def fake_loader(sample: Sample) -> Frames:
    """4 frames of 64x64 at 1 fps, their content seeded by the sample id (no decoding)."""
    rng = np.random.default_rng(abs(hash(sample.id)) % 2**32)
    arr = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    ts = (0.0, 1.0, 2.0, 3.0)
    return Frames(
        array=arr,
        timestamps=ts,
        source_timestamps=ts,
        indices=(0, 8, 16, 24),
        native_fps=8.0,
        sampled_fps=1.0,
        decoder="synthetic",
        path=sample.video or "",
        duration=4.0,
    )


def samples(n: int = 4) -> list[Sample]:
    colors = ["red", "blue", "green", "yellow"]
    return [
        Sample(
            id=f"s{i}",
            video=f"clip{i}.mp4",
            duration=4.0,
            query=f"when does the {colors[i % 4]} square appear?",
            answer=(0.5 * i, 0.5 * i + 1.5),
        )
        for i in range(n)
    ]


def tiny_config(**training) -> VtgConfig:
    cfg = VtgConfig()
    cfg.model.name_or_path = testing.tiny_model_dir()
    cfg.model.gradient_checkpointing = False
    cfg.video.max_frames = 4
    cfg.video.resolution.height = cfg.video.resolution.width = 64
    cfg.lora.r, cfg.lora.lora_alpha, cfg.lora.lora_dropout = 8, 16, 0.0
    cfg.dataloader.num_workers = 0
    defaults = {
        "max_steps": 3,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "logging_steps": 1,
        "save_steps": 1000,
        "learning_rate": 5e-3,
        "warmup_ratio": 0.0,
        "lr_scheduler_type": "constant",
    }
    for key, value in {**defaults, **training}.items():
        setattr(cfg.training, key, value)
    return cfg


def test_training_arguments_follow_the_config(tmp_path):
    cfg = VtgConfig()  # seed 000's sft_config.yaml values
    args = training_arguments(cfg, tmp_path, has_eval=False)
    assert args.learning_rate == 1e-4
    assert args.per_device_train_batch_size == 2 and args.gradient_accumulation_steps == 8
    assert args.num_train_epochs == 3 and args.warmup_steps == 0.03 and args.weight_decay == 0.01
    assert args.eval_strategy == "no" and args.report_to == [] and args.remove_unused_columns is False
    if not torch.cuda.is_available():
        assert not args.bf16 and not args.fp16
    cfg.training.report_to = "tensorboard"
    assert training_arguments(cfg, tmp_path, has_eval=True).eval_strategy == "steps"


def test_dataset_and_collator_mask_everything_but_the_answer():
    _, processor = testing.tiny_qwen3_vl()
    task = TemporalGroundingTask(system_prompt="You are a video assistant.")
    ds = VideoSampleDataset(samples(2), task, processor, frame_loader=fake_loader)
    batch = VideoCollator.for_processor(processor)([ds[0], ds[1]])
    assert set(batch) >= {
        "input_ids",
        "attention_mask",
        "labels",
        "pixel_values_videos",
        "video_grid_thw",
        "mm_token_type_ids",
    }
    tok = processor.tokenizer
    for row, sample in enumerate(samples(2)):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        keep = labels != IGNORE_INDEX
        assert tok.decode(ids[keep]) == task.target(sample) + "<|im_end|>"
        masked = tok.decode(ids[~keep & (batch["attention_mask"][row] == 1)])
        assert "You are a video assistant." in masked and sample.query.rstrip("?") in masked
        video = ids == processor.video_token_id
        assert int(video.sum()) > 0 and not bool(keep[video].any())
    # The same sample always gets the same prompt template.
    assert torch.equal(ds[1]["input_ids"], ds[1]["input_ids"])


def _named(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_sft_trains_what_it_should_and_nothing_else(tmp_path):
    model, processor = testing.tiny_qwen3_vl()
    before = _named(model)  # the base model's own names, before peft wraps it
    cfg = tiny_config(mm_projector_lr=5e-3)
    result = run_sft(
        cfg,
        task=TemporalGroundingTask(),
        train_samples=samples(4),
        output_dir=tmp_path,
        model=model,
        processor=processor,
        frame_loader=fake_loader,
    )
    trained = result.model
    after = {n: p.detach() for n, p in trained.named_parameters()}
    lora = [n for n in after if "lora_" in n]
    assert lora and all(not torch.equal(after[n], torch.zeros_like(after[n])) for n in lora if "lora_B" in n)
    # Base weights under LoRA, the frozen vision tower, embeddings and head do not move.
    base = trained.get_base_model()
    for name, old in before.items():
        if "merger" in name:  # the projector: trained through its modules_to_save copy, checked below
            continue
        assert torch.equal(base.get_parameter(name).detach(), old), name
    # The projector trains (mm_projector_lr > 0) through its modules_to_save copy.
    merger = [n for n in after if ".visual.merger.modules_to_save." in n and n.endswith("linear_fc1.weight")]
    assert merger and not torch.equal(after[merger[0]], before["model.visual.merger.linear_fc1.weight"])
    assert result.metrics["train_loss"] > 0 and os.path.isdir(result.checkpoint)


def test_sft_loss_goes_down_on_a_fixed_batch(tmp_path):
    # lm_head trains too (seed 002 lists it in modules_to_save): a random tiny head caps how far
    # LoRA alone can move the logits.
    cfg = tiny_config(max_steps=20, learning_rate=1e-2, head_lr=1e-2, per_device_train_batch_size=2)
    cfg.lora.modules_to_save = ["lm_head"]
    result = run_sft(
        cfg,
        task=TemporalGroundingTask(prompt_template=0),
        train_samples=samples(2),
        output_dir=tmp_path,
        frame_loader=fake_loader,
    )
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert len(losses) == 20
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


def test_sft_on_decoded_clips_with_eval_and_complete_checkpoints(tmp_path, caplog):
    import logging

    from vtg_core.backends.checkpoint import load_checkpoint
    from vtg_core.data.synthetic import make_grounding_dataset

    paths = make_grounding_dataset(tmp_path / "data", num_train=4, num_val=2, duration_range=(2, 3))
    task = TemporalGroundingTask()
    train, _ = task.load(paths["train"], video_dir=paths["video_dir"])
    val, _ = task.load(paths["val"], video_dir=paths["video_dir"])
    cfg = tiny_config(max_steps=2, save_steps=1, save_total_limit=1)
    cfg.validation.batch_size = 2
    cfg.duration_batching.enabled = True  # batches through the registered duration sampler
    cfg.duration_batching.target_batch_duration = 6.0
    with caplog.at_level(logging.INFO, logger="vtg_core.samplers"):
        result = run_sft(cfg, task=task, train_samples=train, eval_samples=val, output_dir=tmp_path / "out")
    assert "eval_loss" in result.metrics
    # Seed 000's sampler lines: set-up, then per-interval batch sizes during training.
    assert any(m.startswith("DurationBasedBatchSampler initialized: samples=4") for m in caplog.messages)
    assert any(m.startswith("Step 1: batch_size avg=") for m in caplog.messages), caplog.messages
    final = sorted(os.listdir(result.checkpoint))
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "processor_config.json",
        "generation_config.json",
        "vtg_config.yaml",
        "vtg_checkpoint.json",
    ):
        assert name in final
    intermediate = [d for d in os.listdir(tmp_path / "out") if d.startswith("checkpoint-")]
    assert intermediate and "vtg_config.yaml" in os.listdir(tmp_path / "out" / intermediate[0])

    # The final checkpoint alone reproduces the trained model on a decoded clip.
    example = VideoSampleDataset(val, task, result.processor, video=cfg.video)[0]
    result.model.eval()
    with torch.no_grad():
        expected = result.model(**example).logits
    loaded, processor = load_checkpoint(result.checkpoint)
    assert processor.tokenizer.get_vocab() == result.processor.tokenizer.get_vocab()
    with torch.no_grad():
        assert torch.equal(loaded(**example).logits, expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sft_in_bf16_on_gpu(tmp_path):
    from vtg_core.backends.transformers_backend import TransformersBackend

    cfg = tiny_config(max_steps=2, bf16=True)
    cfg.model.torch_dtype = "bfloat16"
    cfg.model.attn_implementation = "flash_attention_2"  # falls back to sdpa without flash_attn
    model, processor = TransformersBackend().load(cfg)
    assert model.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    result = run_sft(
        cfg,
        task=TemporalGroundingTask(),
        train_samples=samples(2),
        output_dir=tmp_path,
        model=model,
        processor=processor,
        frame_loader=fake_loader,
    )
    assert np.isfinite(result.metrics["train_loss"])
