"""A reward that raises, hangs, or returns NaN / the wrong number of values never bends a run silently."""

from __future__ import annotations

import logging
import math
import time

import pytest

from vtg_core.errors import ConfigError, RewardError
from vtg_core.rewards import build_rewards
from vtg_core.rewards.guard import guard_reward

IDS = ["clip-a", "clip-b", "clip-c"]


def fragile(prompts, completions, sample_id, **kwargs):
    """Scores completion length; raises on the sample with id clip-b."""
    out = []
    for text, sid in zip(completions, sample_id, strict=True):
        if sid == "clip-b":
            raise KeyError(f"no ground truth for {sid}")
        out.append(float(len(text)))
    return out


def call(fn, completions=("a", "bb", "ccc"), ids=IDS, **extra):
    return fn(prompts=["p"] * len(completions), completions=list(completions), sample_id=list(ids), **extra)


def test_by_default_a_raising_reward_stops_naming_reward_sample_and_traceback():
    with pytest.raises(RewardError) as info:
        call(guard_reward(fragile, "fragile"))
    text = str(info.value)
    assert "reward 'fragile' raised KeyError" in text and "sample clip-b" in text
    assert "Traceback" in text and "in fragile" in text  # the original traceback, down to the reward's own line
    assert "on_error" in text  # says how to tolerate it instead
    assert info.value.reward == "fragile" and info.value.sample_id == "clip-b"


@pytest.mark.parametrize(("policy", "expected"), [("zero", 0.0), ("drop", None)])
def test_on_error_scores_only_the_failing_sample_and_counts_it(policy, expected, caplog):
    metrics = []
    guarded = guard_reward(fragile, "fragile", on_error=policy)
    with caplog.at_level(logging.WARNING, logger="vtg_core.rewards.guard"):
        first = call(guarded, log_metric=lambda name, value: metrics.append((name, value)))
        call(guarded)
    assert first == [1.0, expected, 3.0]  # the other samples keep their real scores
    assert guarded.errors == {"KeyError": 2}
    assert metrics == [("rewards/fragile/errors", 1.0)]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and "sample clip-b" in warned[0] and f"on_error={policy}" in warned[0]
    assert "2 so far" in warned[1]


@pytest.mark.parametrize("policy", ["raise", "zero", "drop"])
@pytest.mark.parametrize(("bad", "message"), [
    (lambda n: [1.0] * (n - 1), "returned 2 values for 3 completions"),
    (lambda n: [1.0, math.nan, 1.0], "returned nan for sample clip-b"),
    (lambda n: [1.0, 1.0, math.inf], "returned inf for sample clip-c"),
    (lambda n: [1.0, "0.5", 1.0], "returned '0.5' (str) for sample clip-b"),
    (lambda n: 1.0, "returned float, not a list"),
])
def test_nan_and_wrong_shapes_are_errors_whatever_the_policy(policy, bad, message):
    def reward(prompts, completions, **kwargs):
        return bad(len(completions))

    with pytest.raises(RewardError, match="reward 'shape'") as info:
        call(guard_reward(reward, "shape", on_error=policy))
    assert message in str(info.value)


def test_none_means_not_applicable_and_passes():
    assert call(guard_reward(lambda prompts, completions, **kw: [None, 0.5, 1], "maybe")) == [None, 0.5, 1.0]


def test_a_slow_reward_times_out_with_a_clear_error():
    def slow(prompts, completions, **kwargs):
        time.sleep(3)
        return [1.0] * len(completions)

    start = time.monotonic()
    with pytest.raises(RewardError) as info:
        call(guard_reward(slow, "slow", timeout=0.2))
    assert time.monotonic() - start < 2
    assert "reward 'slow' took more than 0.2 s" in str(info.value) and "clip-a" in str(info.value)
    zeroed = guard_reward(slow, "slow", timeout=0.2, on_error="zero")
    assert call(zeroed) == [0.0, 0.0, 0.0] and zeroed.errors == {"timeout": 3}


def test_rewards_entries_carry_on_error_and_timeout_for_the_guard():
    registry = {"fragile": lambda: fragile, "length": lambda scale=1.0: (
        lambda prompts, completions, **kw: [scale * len(c) for c in completions])}
    built = build_rewards([{"name": "fragile", "on_error": "drop", "timeout": 5},
                           {"name": "length", "scale": 2.0}], registry)
    assert [b.name for b in built] == ["fragile", "length"]
    assert call(built[0].fn) == [1.0, None, 3.0]
    assert built[0].fn.timeout == 5.0 and built[1].fn.on_error == "raise"
    with pytest.raises(ConfigError, match="on_error must be one of raise, zero, drop"):
        build_rewards([{"name": "length", "on_error": "ignore"}], registry)
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        build_rewards([{"name": "length", "timeout": -1}], registry)


def test_a_composite_reports_the_failing_component():
    registry = {"fragile": lambda: fragile, "composite": __import__("vtg_core.rewards", fromlist=["x"]).composite}
    (built,) = build_rewards([{"name": "composite", "rewards": [{"name": "fragile"}]}], registry)
    with pytest.raises(RewardError, match="reward 'fragile' raised KeyError.*sample clip-b"):
        call(built.fn)


def _grpo_config(model_dir: str, rewards: list):
    from vtg_core.config import VtgConfig
    from vtg_core.config.schema import (
        LoraConfig,
        ModelConfig,
        ResolutionConfig,
        RewardEntry,
        RLConfig,
        TrainingConfig,
        VideoConfig,
    )

    return VtgConfig(
        model=ModelConfig(name_or_path=model_dir, torch_dtype="float32", attn_implementation="sdpa",
                          gradient_checkpointing=False),
        lora=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
        training=TrainingConfig(learning_rate=1e-2, mm_projector_lr=0.0, head_lr=0.0, per_device_train_batch_size=4,
                                gradient_accumulation_steps=1, max_steps=1, warmup_ratio=0.0, logging_steps=1,
                                save_steps=1000, bf16=False, seed=0),
        video=VideoConfig(max_frames=4, resolution=ResolutionConfig(height=32, width=32)),
        rl=RLConfig(num_generations=2, max_completion_length=4, max_prompt_length=512),
        rewards=[RewardEntry(**r) for r in rewards],
    )


@pytest.mark.torch
def test_a_raising_reward_stops_a_real_grpo_step_and_on_error_lets_it_train(grpo_steps_here, tmp_path):
    """Through TRL's GRPO trainer: the reward's error, naming reward and sample, stops run_grpo; with
    on_error=zero the same step trains and the failure is counted."""
    pytest.importorskip("trl")
    from vtg_core.data.sample import Sample
    from vtg_core.data.synthetic import make_clip
    from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask
    from vtg_core.testing import tiny_model_dir
    from vtg_core.train.grpo import run_grpo

    clip = str(make_clip(tmp_path / "clip.mp4", duration=2.0, fps=4, size=(32, 32)))
    samples = [Sample(id="clip-a", video=clip, duration=2.0, query="a red square", answer=(0.5, 1.5)),
               Sample(id="clip-b", video=clip, duration=2.0, query="a blue circle", answer=(0.0, 1.0))]
    registry = {"fragile": lambda: fragile}
    task = TemporalGroundingTask(prompt_template=0)
    with pytest.raises(RewardError) as info:
        run_grpo(_grpo_config(tiny_model_dir(), [{"name": "fragile"}]), task=task, train_samples=samples,
                 output_dir=tmp_path / "raise", registry=registry)
    assert "reward 'fragile' raised KeyError" in str(info.value) and "sample clip-b" in str(info.value)
    result = run_grpo(_grpo_config(tiny_model_dir(), [{"name": "fragile", "options": {"on_error": "zero"}}]),
                      task=task, train_samples=samples, output_dir=tmp_path / "zero", registry=registry)
    assert result.global_step == 1
    guarded = result.trainer.reward_funcs[0].fn
    assert guarded.errors == {"KeyError": 2}  # the 2 completions of clip-b
    assert result.log_history[0]["rewards/fragile/errors"] > 0


@pytest.mark.torch
def test_grpo_checkpoints_are_atomic_and_sigterm_saves_and_stops(grpo_steps_here, tmp_path):
    """GRPO gets what SFT has: checkpoint-N renamed into place whole (older ones pruned after), and a
    SIGTERM mid-run finishes the step, saves, and stops with TrainingInterrupted."""
    pytest.importorskip("trl")
    import os
    import signal

    from transformers import TrainerCallback

    from vtg_core.data.sample import Sample
    from vtg_core.data.synthetic import make_clip
    from vtg_core.errors import TrainingInterrupted
    from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask
    from vtg_core.testing import tiny_model_dir
    from vtg_core.train.grpo import run_grpo
    from vtg_core.train.run import _run_grpo_guarded

    class TermAt(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:  # during step 3
                os.kill(os.getpid(), signal.SIGTERM)

    clip = str(make_clip(tmp_path / "clip.mp4", duration=2.0, fps=4, size=(32, 32)))
    samples = [Sample(id=f"c{i}", video=clip, duration=2.0, query="a red square", answer=(0.5, 1.5)) for i in range(2)]
    config = _grpo_config(tiny_model_dir(), [{"name": "length"}])
    config.training.max_steps, config.training.save_steps, config.training.save_total_limit = 6, 1, 1
    registry = {"length": lambda: (lambda prompts, completions, **kw: [0.1 * len(str(c)) for c in completions])}
    out = tmp_path / "rl"

    def run(config, **kwargs):
        kwargs["callbacks"] = [*kwargs.pop("callbacks"), TermAt()]
        return run_grpo(config, registry=registry, **kwargs)

    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="SIGTERM received") as info:
        _run_grpo_guarded(run, config, output_dir=str(out), task=TemporalGroundingTask(prompt_template=0),
                          train_samples=samples)
    assert info.value.exit_code == 128 + signal.SIGTERM
    names = sorted(p.name for p in out.iterdir() if p.name.startswith(("checkpoint-", ".vtg")))
    assert names == ["checkpoint-3"]  # step 3 finished and saved; checkpoint-1/2 pruned after it was complete
    assert info.value.checkpoint == str(out / "checkpoint-3")
    for f in ("trainer_state.json", "optimizer.pt", "rng_state.pth", "adapter_model.safetensors"):
        assert (out / "checkpoint-3" / f).is_file(), f
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the run's handler is gone again
