"""GRPO on TRL with video inputs: config mapping, a real step, and the video/token consistency checks.

The expensive part (importing TRL, building the tiny Qwen3-VL, writing two clips) is shared by
module-scoped fixtures. The two clips have different lengths, so their prompts have different
numbers of ``<|video_pad|>`` tokens (8 and 12) and different prompt lengths: a row paired with the
other sample's video fails the count check, and the shorter prompt is left-padded in a batch.
"""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from vtg_core.config import LoraConfig, ModelConfig, ResolutionConfig, RLConfig, TrainingConfig, VideoConfig
from vtg_core.config.schema import RewardEntry, VtgConfig
from vtg_core.data.sample import Sample
from vtg_core.errors import ConfigError
from vtg_core.train import grpo

G = 2  # generations per prompt


def completion_chars(scale: float = 0.1):
    """A test reward that separates any two different completions. The real grounding rewards give
    a random tiny model 0 for every completion (it never writes a parseable answer), so with them
    alone every advantage is 0 and nothing would train."""
    from vtg_core.rewards import completion_text

    def reward(prompts, completions, **kwargs):
        return [scale * len(completion_text(c)) for c in completions]

    return reward


def reward_registry():
    """Reward names for these tests: the real built-in rewards plus ``completion_chars``."""
    from vtg_core.rewards import segment_overlap, temporal_iou

    return {"temporal_iou": temporal_iou, "segment_overlap": segment_overlap, "completion_chars": completion_chars}



def make_config(model_path: str = "tiny", **rl: object) -> VtgConfig:
    rl_options = {"num_generations": G, "temperature": 1.0, "kl_coef": 0.1, "clip_range": 0.2,
                  "max_completion_length": 6, "max_prompt_length": 512, **rl}
    return VtgConfig(
        model=ModelConfig(name_or_path=model_path, torch_dtype="float32", attn_implementation="sdpa",
                          gradient_checkpointing=False),
        lora=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
        training=TrainingConfig(learning_rate=1e-2, mm_projector_lr=0.0, head_lr=0.0, per_device_train_batch_size=4,
                                gradient_accumulation_steps=1, max_steps=1, warmup_ratio=0.0, weight_decay=0.0,
                                logging_steps=1, save_steps=1000, bf16=False, seed=0),
        video=VideoConfig(max_frames=8, fps=2.0, resolution=ResolutionConfig(height=64, width=64)),
        rl=RLConfig(**rl_options),
        rewards=[RewardEntry(name="temporal_iou", weight=1.0),
                 RewardEntry(name="segment_overlap", weight=0.5, options={"mode": "recall"}),
                 RewardEntry(name="completion_chars", weight=0.1)],
    )


# ---- config mapping (no torch needed) -------------------------------------------------------


def test_rl_keys_map_onto_grpo_config():
    kw = grpo.grpo_config_kwargs(make_config(kl_coef=0.05, clip_range=0.3, temperature=0.7), "out",
                                 reward_weights=[1.0, 0.5])
    assert (kw["loss_type"], kw["scale_rewards"]) == ("grpo", "group")
    assert kw["beta"] == 0.05 and kw["epsilon"] == 0.3 and kw["temperature"] == 0.7
    assert kw["num_generations"] == G and kw["max_completion_length"] == 6
    assert kw["reward_weights"] == [1.0, 0.5]
    assert kw["remove_unused_columns"] is False  # reward columns must reach the reward functions
    r1 = grpo.grpo_config_kwargs(make_config(algorithm="r1"), "out")
    assert (r1["loss_type"], r1["scale_rewards"]) == ("dr_grpo", "none")


def test_batch_must_hold_whole_groups():
    config = make_config(num_generations=3)
    with pytest.raises(ConfigError, match="num_generations=3 must divide"):
        grpo.grpo_config_kwargs(config, "out")
    with pytest.raises(ConfigError, match=">= 2"):
        grpo.grpo_config_kwargs(make_config(num_generations=1), "out")


def test_rows_survive_arrow_and_give_back_the_task_messages(tmp_path):
    datasets = pytest.importorskip("datasets")
    from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask

    task = TemporalGroundingTask(prompt_template=0, system_prompt="You localize events.")
    samples = [Sample(id="a", video="a.mp4", duration=2.0, query="a red square moves", answer=(0.5, 1.5))]
    row = datasets.Dataset.from_list(grpo.build_rows(task, samples))[0]
    assert grpo.denormalize_messages(row["prompt"]) == [
        {"role": "system", "content": [{"type": "text", "text": "You localize events."}]},
        {"role": "user", "content": task.build_messages(samples[0])[1]["content"]},
    ]
    assert row["timestamp"] == [0.5, 1.5] and row["duration"] == 2.0 and row["sample_id"] == "a"


def test_reward_entries_become_one_trl_reward_each():
    from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask

    config = make_config()
    config.rewards[2] = RewardEntry(name="temporal_iou", weight=2.0, options={"scale": 0.5})
    funcs, weights, names = grpo.build_reward_funcs(config, TemporalGroundingTask())  # the plugin registry
    assert names == ["temporal_iou", "segment_overlap", "temporal_iou_2"]
    assert weights == [1.0, 0.5, 2.0]
    assert [f.__name__ for f in funcs] == names  # TRL logs rewards/<__name__>/mean
    out = funcs[2](prompts=[None], completions=[[{"role": "assistant", "content": "<answer>0.5 to 1.5</answer>"}]],
                   timestamp=[[0.5, 1.5]], duration=[2.0])
    assert out == [0.5]
    config.rewards.clear()
    _, _, default_names = grpo.build_reward_funcs(config, TemporalGroundingTask())
    assert default_names == ["temporal_iou", "segment_overlap"]  # the task's defaults


# ---- torch fixtures -------------------------------------------------------------------------


def _write_clip(path, seconds: float, fps: int = 4, seed: int = 0) -> str:
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((64, 64, 3), 40, np.uint8)
            img[:, (i * 8) % 64:(i * 8) % 64 + 8] = rng.integers(0, 255, 3, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


@pytest.fixture(scope="module")
def stack():
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    import torch

    torch.set_num_threads(2)
    from vtg_core.backends.transformers_backend import TransformersBackend
    from vtg_core.tasks.temporal_grounding.task import TemporalGroundingTask
    from vtg_core.testing import tiny_model_dir

    return {"backend": TransformersBackend(), "task": TemporalGroundingTask(prompt_template=0),
            "model_dir": tiny_model_dir()}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    pytest.importorskip("av")
    d = tmp_path_factory.mktemp("clips")
    # 2 s and 3 s at video.fps=2 -> 4 and 6 frames -> 8 and 12 video tokens; different query lengths.
    return [
        Sample(id="short", video=_write_clip(d / "short.mp4", 2.0, seed=1), duration=2.0,
               query="a red square moves", answer=(0.5, 1.5)),
        Sample(id="long", video=_write_clip(d / "long.mp4", 3.0, seed=2), duration=3.0,
               query="the white ball bounces from the left corner to the right corner of the frame",
               answer=(1.0, 2.5)),
    ]


def _policy(stack, config):
    model, processor = stack["backend"].load(config)
    model, _ = stack["backend"].prepare_for_training(model, processor, config)
    model.train()
    return model, processor


@pytest.fixture(scope="module")
def trainer(stack, samples, tmp_path_factory):
    """A VideoGRPOTrainer built like run_grpo builds it, with beta > 0 (so TRL also computes reference
    log-probs) and 2 completions per step over 2 accumulation steps: generation batches of 4 rows
    that TRL scores in chunks of 2, shuffles and splits in two."""
    import torch
    from datasets import Dataset

    from vtg_core.train.dataset import frame_loader_from_config
    from vtg_core.train.grpo_video import VideoGRPOTrainer

    config = make_config(stack["model_dir"])
    config.training.per_device_train_batch_size = 2
    config.training.gradient_accumulation_steps = 2
    model, processor = _policy(stack, config)
    assert processor.tokenizer.padding_side == "right"  # the opposite of what generation needs, on purpose
    funcs, weights, _ = grpo.build_reward_funcs(config, stack["task"], registry=reward_registry())
    out = tmp_path_factory.mktemp("grpo_trainer")
    args = grpo.make_grpo_config(grpo.grpo_config_kwargs(config, out, reward_weights=weights))
    trainer = VideoGRPOTrainer(
        model=model, args=args, reward_funcs=funcs, processing_class=processor,
        train_dataset=Dataset.from_list(grpo.build_rows(stack["task"], samples)),
        encode_prompt=grpo.prompt_encoder(stack["backend"], processor, samples, frame_loader_from_config(config.video)),
        max_prompt_length=config.rl.max_prompt_length,
    )
    # Move the policy away from the reference (TRL's "ref" adapter is the zero-initialised copy taken
    # above), so policy and reference log-probs differ and each must match its own direct forward.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if "lora_B.default" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    return trainer


def _generation_batch(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    ids = [row["sample_id"] for row in batch]
    assert len(ids) == 2 * G and sorted(set(ids)) == ["long", "short"]
    assert all(ids[i] == ids[i - i % G] for i in range(len(ids)))  # RepeatSampler: groups are consecutive
    return batch


_fresh_encodings: dict = {}


def _direct_logps(trainer, row, completion_ids, *, adapter: bool):
    """Log-probs of ``completion_ids`` from one plain forward on the unrepeated, unpadded prompt."""
    import torch

    key = (id(trainer), row["sample_id"], row["video"])
    if key not in _fresh_encodings:  # a fresh encoding (not the trainer's), made once per sample
        _fresh_encodings[key] = trainer._encode_prompt(row)
    enc = _fresh_encodings[key]
    ids = torch.tensor([list(enc.prompt_ids) + completion_ids.tolist()])
    types = torch.zeros_like(ids)
    types[ids == trainer.model.config.video_token_id] = 2
    model = trainer.model
    with torch.no_grad(), (model.disable_adapter() if not adapter else contextlib.nullcontext()):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=types,
                       **enc.visual).logits
    logits = logits[0, len(enc.prompt_ids) - 1:-1].float() / trainer.temperature
    return torch.log_softmax(logits, -1).gather(-1, completion_ids[:, None])[:, 0]


# ---- torch tests ----------------------------------------------------------------------------


@pytest.mark.torch
def test_grpo_step_on_video_trains_and_logs_rewards(grpo_steps_here, stack, samples, tmp_path):
    import torch

    config = make_config(stack["model_dir"])
    model, processor = _policy(stack, config)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    result = grpo.run_grpo(config, task=stack["task"], train_samples=samples, output_dir=tmp_path,
                           model=model, processor=processor, registry=reward_registry())

    assert result.global_step == 1
    # No weight decay: only a gradient moves a parameter, and LoRA's B starts at exactly 0.
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p.detach())]
    assert any("lora_B" in n for n in changed) and all("lora_" in n for n in changed)
    step = result.log_history[0]
    assert step["grad_norm"] > 0
    names = ("temporal_iou", "segment_overlap", "completion_chars")
    assert result.reward_names == names and result.reward_weights == (1.0, 0.5, 0.1)
    for name in names:  # TRL logs each configured reward under its own name
        assert f"rewards/{name}/mean" in step and f"rewards/{name}/std" in step
    assert step["rewards/temporal_iou/mean"] == 0.0  # a random model's answers do not parse: 0, not None

    with open(result.completions_path, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    assert len(records) == 2 * G and {r["sample_id"] for r in records} == {"short", "long"}
    for r in records:
        assert set(r["rewards"]) == set(names) and isinstance(r["completion"], str)
        assert r["reward"] == pytest.approx(sum(w * r["rewards"][n] for n, w in zip(names, (1.0, 0.5, 0.1), strict=True)))
        assert r["step"] == 1
    final = result.checkpoint_dir
    assert os.path.isfile(os.path.join(final, "adapter_config.json"))
    assert os.path.isfile(os.path.join(final, "vtg_checkpoint.json"))
    assert not os.path.exists(os.path.join(final, "ref"))  # TRL's frozen reference copy is not shipped


@pytest.mark.torch
def test_video_tokens_match_features_in_every_repeated_row(grpo_steps_here, trainer, samples):
    import torch

    from vtg_core.train.grpo_video import VIDEO_KEY

    batch = _generation_batch(trainer)
    out = trainer._generate_and_score_completions(batch)
    rows = out[VIDEO_KEY]
    video_pad = trainer.model.config.video_token_id
    merge = trainer.processing_class.video_processor.merge_size
    counts = {}
    for i, row in enumerate(rows):
        assert row.key == batch[i]["sample_id"]
        group_head = rows[i - i % G]
        # The repeated rows of a group share one encoding: identical ids and the same tensors.
        assert row is group_head
        prompt = out["prompt_ids"][i][out["prompt_mask"][i].bool()]
        assert prompt.tolist() == list(row.prompt_ids)
        tokens = int((prompt == video_pad).sum())
        features = int(row.visual["video_grid_thw"].prod(-1).sum()) // merge**2
        assert tokens == features == row.num_placeholders
        assert int((out["completion_ids"][i] == video_pad).sum()) == 0  # suppressed while sampling
        counts[row.key] = tokens
        fresh = trainer._encode_prompt(batch[i])
        assert torch.equal(fresh.visual["pixel_values_videos"], row.visual["pixel_values_videos"])
    assert counts == {"short": 8, "long": 12}

    # Qwen3-VL: the frames' real timestamps (from video_metadata) are written into each prompt.
    from vtg_core.train.dataset import frame_loader_from_config

    load = frame_loader_from_config(make_config().video)
    for sample in samples:
        ts = load(sample).timestamps
        text = trainer.processing_class.tokenizer.decode(next(r for r in rows if r.key == sample.id).prompt_ids)
        stamps = [f"<{(ts[i] + ts[i + 1]) / 2:.1f} seconds>" for i in range(0, len(ts), 2)]
        assert [text.count(stamp) for stamp in stamps] == [1] * len(stamps), (stamps, text)

    # A row paired with the other sample's video is refused, not silently embedded.
    swapped = [rows[-1]] + list(rows[1:])
    with pytest.raises(RuntimeError, match="placeholder tokens"):
        trainer.visual_inputs(swapped, torch.cat([out["prompt_ids"], out["completion_ids"]], 1),
                              out["prompt_ids"].size(1))


@pytest.mark.torch
def test_left_padded_scoring_matches_a_direct_forward_on_the_unrepeated_sample(grpo_steps_here, trainer, monkeypatch):
    """Reference log-probs (computed on the unshuffled generation batch, in chunks) and policy
    log-probs (after TRL's shuffle and split, in compute_loss) of every row equal a plain forward
    on that sample alone, unpadded, with the same completion."""
    import torch

    from vtg_core.train.grpo_video import VIDEO_KEY

    batch = _generation_batch(trainer)
    seen_generate = {}
    original_generate = trainer.model.generate

    def spy_generate(*args, **kwargs):
        seen_generate.update(kwargs)
        return original_generate(*args, **kwargs)

    monkeypatch.setattr(trainer.model, "generate", spy_generate)
    trainer._step, trainer._buffered_inputs = 0, None
    trainer._prepare_inputs(batch)  # generate + score, then TRL's shuffle and split into 2 slices
    slices = trainer._buffered_inputs
    assert len(slices) == 2 and all(len(s[VIDEO_KEY]) == 2 for s in slices)

    # Generation got left-padded prompts whose modality types sit exactly on the video tokens.
    ids, types = seen_generate["input_ids"], seen_generate["mm_token_type_ids"]
    assert ids.shape == types.shape
    assert torch.equal(types == 2, ids == trainer.model.config.video_token_id)
    mask = seen_generate["attention_mask"]
    assert bool((mask[:, -1] == 1).all()) and bool((mask == 0).any())  # left padding, and some padding
    assert bool((mask.cummax(1).values == mask).all())

    captured = []
    original = trainer._get_per_token_logps_and_entropies

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        captured.append(result[0].detach())
        return result

    monkeypatch.setattr(trainer, "_get_per_token_logps_and_entropies", spy)
    monkeypatch.setattr(trainer, "current_gradient_accumulation_steps", 2, raising=False)  # set by train()
    by_id = {row["sample_id"]: row for row in batch}
    padded_rows = 0
    for inputs in slices:
        prompt_mask = inputs["prompt_mask"]
        assert bool((prompt_mask[:, -1] == 1).all()) and bool((prompt_mask.cummax(1).values == prompt_mask).all())
        trainer.compute_loss(trainer.model, inputs)
        policy_logps = captured[-1]
        for i, enc in enumerate(inputs[VIDEO_KEY]):
            padded_rows += int(bool((prompt_mask[i] == 0).any()))
            keep = inputs["completion_mask"][i].bool()
            completion = inputs["completion_ids"][i][keep]
            direct = _direct_logps(trainer, by_id[enc.key], completion, adapter=True)
            torch.testing.assert_close(policy_logps[i][keep], direct, atol=1e-4, rtol=1e-4)
            ref = _direct_logps(trainer, by_id[enc.key], completion, adapter=False)
            torch.testing.assert_close(inputs["ref_per_token_logps"][i][keep], ref, atol=1e-4, rtol=1e-4)
            assert (direct - ref).abs().max() > 1e-4  # policy and reference really differ here
    assert padded_rows == G  # the short sample's rows, wherever the shuffle put them

    # The check is sensitive to the video: the same completion scored with the other clip differs.
    inputs = slices[0]
    enc = inputs[VIDEO_KEY][0]
    other = next(k for k in by_id if k != enc.key)
    keep = inputs["completion_mask"][0].bool()
    completion = inputs["completion_ids"][0][keep]
    wrong_row = {**by_id[enc.key], "video": by_id[other]["video"], "sample_id": other}
    mismatched = _direct_logps(trainer, wrong_row, completion, adapter=True)
    assert (mismatched - _direct_logps(trainer, by_id[enc.key], completion, adapter=True)).abs().max() > 1e-3


@pytest.mark.torch
def test_grpo_starts_from_an_sft_lora_checkpoint(grpo_steps_here, stack, samples, tmp_path):
    import torch

    config = make_config(stack["model_dir"])
    model, processor = _policy(stack, config)
    with torch.no_grad():  # stand-in for SFT: an adapter that is clearly not a fresh init
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    sft_dir = stack["backend"].save_checkpoint(model, processor, str(tmp_path / "sft" / "final"), config=config)

    config.training.learning_rate = 1e-3
    result = grpo.run_grpo(config, task=stack["task"], train_samples=samples, output_dir=tmp_path / "rl",
                           sft_checkpoint=sft_dir, registry=reward_registry())
    assert result.global_step == 1 and result.checkpoint_dir

    from safetensors.torch import load_file

    sft = load_file(os.path.join(sft_dir, "adapter_model.safetensors"))
    rl = load_file(os.path.join(result.checkpoint_dir, "adapter_model.safetensors"))
    assert sft.keys() == rl.keys()
    lora_b = [k for k in rl if "lora_B" in k]
    assert lora_b and any(not torch.equal(sft[k], rl[k]) for k in lora_b)  # trained...
    assert all(torch.allclose(rl[k], sft[k], atol=2e-3) for k in lora_b)  # ...from the SFT weights

    # model.name_or_path pointing at a checkpoint directory means the same as sft_checkpoint.
    config.model.name_or_path = sft_dir
    assert grpo._checkpoint_dir(config, None) == sft_dir


@pytest.mark.torch
def test_full_finetune_keeps_a_copy_of_the_starting_policy_as_reference(grpo_steps_here, stack, samples, tmp_path):
    """Without LoRA, TRL would reload the reference from ``name_or_path``: absent for a model built in
    memory, and stale once tokens are added. The trainer copies the starting policy instead."""
    import torch

    from vtg_core.testing import tiny_qwen3_vl

    config = make_config("in-memory")
    config.lora.enabled = False
    model, processor = tiny_qwen3_vl()
    model.name_or_path = model.config._name_or_path = ""  # nothing to reload from
    result = grpo.run_grpo(config, task=stack["task"], train_samples=samples, output_dir=tmp_path,
                           model=model, processor=processor, registry=reward_registry())
    ref = result.trainer.ref_model
    policy = result.trainer.model
    assert ref is not None and ref is not policy
    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    trained, reference = policy.get_parameter(name), ref.get_parameter(name)
    assert not torch.equal(trained, reference) and not reference.requires_grad
    assert os.path.isfile(os.path.join(result.checkpoint_dir, "model.safetensors"))


@pytest.mark.torch
def test_temporal_tokens_under_lora_are_refused_with_a_way_out(stack):
    """peft wraps lm_head's new token rows in TrainableTokens, which TRL's fused head cannot read
    (it crashed with an AttributeError deep in TRL): GRPO must say so before training."""
    config = make_config(stack["model_dir"])
    config.temporal.use_temporal_tokens = True
    config.temporal.num_bins = 8
    model, _ = _policy(stack, config)
    with pytest.raises(ConfigError, match="modules_to_save"):
        grpo._check_lm_head(model)
    config.lora.modules_to_save = ["lm_head"]
    model, _ = _policy(stack, config)
    grpo._check_lm_head(model)  # the head trained in full is fine
