"""A step with a non-finite loss or gradient is never applied; the run stops (or skips, up to a limit)
naming the step, the batch's sample ids and the last good checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from transformers import TrainerCallback  # noqa: E402

from vtg_core import testing  # noqa: E402
from vtg_core.config import VtgConfig  # noqa: E402
from vtg_core.data.sample import Sample  # noqa: E402
from vtg_core.data.video import Frames  # noqa: E402
from vtg_core.errors import NonFiniteError  # noqa: E402
from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask  # noqa: E402
from vtg_core.train.sft import run_sft  # noqa: E402

pytestmark = pytest.mark.torch


def frames(sample: Sample) -> Frames:
    rng = np.random.default_rng(int(sample.id[1:]))
    ts = (0.0, 1.0, 2.0, 3.0)
    return Frames(array=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), timestamps=ts, source_timestamps=ts,
                  indices=(0, 4, 8, 12), native_fps=4.0, sampled_fps=1.0, decoder="synthetic",
                  path=sample.video or "", duration=4.0)


SAMPLES = [Sample(id=f"s{i}", video=f"clip{i}.mp4", duration=4.0, query=f"when does shape {i} appear?",
                  answer=(0.5, 2.0)) for i in range(8)]


def config(**training) -> VtgConfig:
    cfg = VtgConfig()
    cfg.model.name_or_path = testing.tiny_model_dir()
    cfg.model.gradient_checkpointing = False
    cfg.model.torch_dtype = "float32"
    cfg.video.max_frames = 4
    cfg.lora.r, cfg.lora.lora_alpha, cfg.lora.lora_dropout = 4, 8, 0.0
    cfg.dataloader.num_workers = 0
    values = {"max_steps": 4, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
              "logging_steps": 1, "save_steps": 1, "save_total_limit": None, "learning_rate": 5e-3,
              "warmup_ratio": 0.0, "lr_scheduler_type": "constant", "bf16": False, **training}
    for key, value in values.items():
        setattr(cfg.training, key, value)
    return cfg


class Poison(TrainerCallback):
    """Fills the input embeddings with NaN for the given steps (a real overflow's effect: NaN
    activations, loss and gradients), records the trainable weights and optimizer state around
    each poisoned step, and repairs the embeddings after it."""

    def __init__(self, steps: set[int]):
        self.steps = steps
        self.record: dict[int, dict] = {}
        self.batches: dict[int, int] = {}

    def on_step_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        step = state.global_step + 1
        if step in self.steps:
            emb = model.get_input_embeddings().weight
            self._saved = emb.detach().clone()
            with torch.no_grad():
                emb.fill_(float("nan"))
            self.record[step] = {"before": _trainable(model), "opt_before": _opt_steps(optimizer)}

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        step = state.global_step
        if step in self.steps:
            self.record[step].update(after=_trainable(model), opt_after=_opt_steps(optimizer))
            with torch.no_grad():
                model.get_input_embeddings().weight.copy_(self._saved)


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _opt_steps(optimizer) -> list[float]:
    return [float(s["step"]) for s in optimizer.state.values() if "step" in s]


def test_stop_is_the_default_and_names_step_samples_and_last_checkpoint(tmp_path):
    poison = Poison({3})
    with pytest.raises(NonFiniteError) as info:
        run_sft(config(), task=TemporalGroundingTask(prompt_template=0), train_samples=SAMPLES,
                output_dir=tmp_path, frame_loader=frames, callbacks=[poison])
    err = info.value
    assert err.step == 3 and err.checkpoint == str(tmp_path / "checkpoint-2")
    assert len(err.sample_ids) == 2 and set(err.sample_ids) <= {s.id for s in SAMPLES}
    text = str(err)
    assert "step 3: loss nan" in text and "non-finite gradients in" in text
    assert f"Batch samples: {', '.join(err.sample_ids)}" in text and "Last good checkpoint: " in text
    # Nothing of step 3 was saved; checkpoint-2 is complete and is what a resume would use.
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert not (tmp_path / "final").exists()


def test_skip_leaves_weights_and_optimizer_untouched_and_goes_on(tmp_path, caplog):
    poison = Poison({2})
    with caplog.at_level(logging.WARNING, logger="vtg_core.train.guards"):
        result = run_sft(config(on_nonfinite="skip", max_nonfinite_steps=2, max_steps=4),
                         task=TemporalGroundingTask(prompt_template=0), train_samples=SAMPLES,
                         output_dir=tmp_path, frame_loader=frames, callbacks=[poison])
    rec = poison.record[2]
    assert rec["before"].keys() == rec["after"].keys()
    assert all(torch.equal(rec["before"][k], rec["after"][k]) for k in rec["before"])  # step 2 not applied
    assert rec["opt_before"] == rec["opt_after"] and rec["opt_before"]  # nor any optimizer moment / count
    assert all(torch.isfinite(p).all() for p in _trainable(result.model).values())
    assert Path(result.checkpoint).is_dir()
    warned = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("step 2 skipped (training.on_nonfinite=skip, 1 of at most 2)")
    assert "batch samples: s" in warned[0]
    # Later steps trained: their weights moved.
    assert any(not torch.equal(rec["after"][k], v) for k, v in _trainable(result.model).items())


def test_skip_stops_past_its_limit(tmp_path):
    with pytest.raises(NonFiniteError, match=r"more than training.max_nonfinite_steps=1 steps had to be skipped "
                                             r"\(steps 2, 3\)") as info:
        run_sft(config(on_nonfinite="skip", max_nonfinite_steps=1), task=TemporalGroundingTask(prompt_template=0),
                train_samples=SAMPLES, output_dir=tmp_path, frame_loader=frames, callbacks=[Poison({2, 3})])
    assert info.value.step == 3 and info.value.checkpoint == str(tmp_path / "checkpoint-2")
