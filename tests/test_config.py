"""Config: defaults, packaged copies, merging, --set overrides, error messages, round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtg_core.config import (
    ConfigError,
    RewardEntry,
    VtgConfig,
    apply_overrides,
    deep_merge,
    default_config,
    dump_yaml,
    from_dict,
    list_packaged_configs,
    load_config,
    packaged_config_dir,
    parse_override,
    resolve_deepspeed_config,
    to_dict,
)

REPO = Path(__file__).resolve().parents[1]
ROOT_CONFIGS = REPO / "configs"
DATA = str(ROOT_CONFIGS / "data" / "video_config.yaml")
SFT = str(ROOT_CONFIGS / "training" / "sft_config.yaml")
RL = str(ROOT_CONFIGS / "training" / "rl_config.yaml")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    return str(info.value)


# ---- defaults and shipped files ------------------------------------------------------------


def test_packaged_configs_are_byte_identical_to_repo_configs():
    root_files = sorted(str(p.relative_to(ROOT_CONFIGS)) for p in ROOT_CONFIGS.rglob("*") if p.is_file())
    assert root_files == list_packaged_configs()
    for rel in root_files:
        assert (ROOT_CONFIGS / rel).read_bytes() == (packaged_config_dir() / rel).read_bytes(), (
            f"vtg_core/configs/{rel} differs from configs/{rel}: run `cp -r configs/. vtg_core/configs/`")


def test_python_defaults_equal_packaged_sft_defaults():
    assert default_config() == VtgConfig()
    assert load_config([DATA, SFT]) == VtgConfig()
    assert load_config([]) == VtgConfig()


def test_shipped_yaml_show_every_key():
    # A user reading the shipped files sees every setting there is, with its default.
    merged = deep_merge(yaml.safe_load(Path(DATA).read_text()), yaml.safe_load(Path(SFT).read_text()))
    merged = deep_merge(merged, yaml.safe_load(Path(RL).read_text()))

    def leaves(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v and k not in ("task_options",):
                yield from leaves(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    assert set(leaves(to_dict(VtgConfig()))) <= set(leaves(merged))


def test_rl_defaults_follow_the_grpo_recipe():
    cfg = default_config("rl")
    assert cfg.training.learning_rate == cfg.training.mm_projector_lr == cfg.training.head_lr == 5e-7
    assert cfg.lora.enabled is False and cfg.training.vision_tower_lr == 0.0
    assert cfg.training.per_device_train_batch_size == 1
    assert cfg.training.output_dir == "./outputs/rl"
    assert (cfg.rl.num_generations, cfg.rl.temperature, cfg.rl.kl_coef, cfg.rl.clip_range) == (4, 0.7, 0.05, 0.2)
    assert cfg.rewards == [RewardEntry(name="temporal_iou", weight=1.0),
                           RewardEntry(name="segment_overlap", weight=0.5, options={"mode": "recall"})]
    assert cfg.dataset == VtgConfig().dataset  # the data side comes from the data config
    with pytest.raises(ConfigError, match="unknown stage"):
        default_config("dpo")


def test_seed_values():
    cfg = VtgConfig()
    assert (cfg.video.max_frames, cfg.video.resolution.height, cfg.video.fps) == (32, 384, 0.0)
    assert (cfg.temporal.num_bins, cfg.temporal.use_relative_timestamps) == (100, True)
    assert cfg.duration_batching.target_batch_duration == 1200.0
    assert (cfg.lora.r, cfg.lora.lora_alpha) == (64, 128)
    assert (cfg.training.learning_rate, cfg.training.mm_projector_lr, cfg.training.vision_tower_lr,
            cfg.training.head_lr) == (1e-4, 1e-5, 0.0, 1e-4)
    assert cfg.model.name_or_path == "Qwen/Qwen3-VL-4B-Instruct"


@pytest.mark.parametrize("name,stage", [("ds_zero2.json", 2), ("ds_zero3_offload.json", 3)])
def test_deepspeed_configs(name, stage):
    ds = json.loads((ROOT_CONFIGS / "deepspeed" / name).read_text())
    assert ds["zero_optimization"]["stage"] == stage
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert ds[key] == "auto", key  # filled from the vtg config, so the two cannot disagree
    assert ds["bf16"]["enabled"] == "auto"
    assert "optimizer" not in ds  # per-module learning rates need the trainer's optimizer
    if stage == 3:
        assert ds["zero_optimization"]["offload_param"]["device"] == "cpu"
        assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
        assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_resolve_deepspeed_config(tmp_path):
    assert resolve_deepspeed_config(None) is None
    for name in ("zero2", "ds_zero2", "ds_zero2.json"):
        assert resolve_deepspeed_config(name).name == "ds_zero2.json"
    assert resolve_deepspeed_config("zero3_offload").is_file()
    own = write(tmp_path, "mine.json", "{}")
    assert str(resolve_deepspeed_config(own)) == own
    with pytest.raises(ConfigError, match="zero2, zero3_offload"):
        resolve_deepspeed_config("zero9")


# ---- merging and overrides ----------------------------------------------------------------


def test_later_files_override_key_by_key(tmp_path):
    a = write(tmp_path, "a.yaml", "video:\n  max_frames: 16\n  resolution: {height: 256, width: 256}\n"
                                  "lora:\n  target_modules: [a, b, c]\n")
    b = write(tmp_path, "b.yaml", "video:\n  resolution: {height: 128}\nlora:\n  target_modules: [d]\n")
    cfg = load_config([a, b])
    assert cfg.video.max_frames == 16  # kept from a: sections merge
    assert (cfg.video.resolution.height, cfg.video.resolution.width) == (128, 256)
    assert cfg.lora.target_modules == ["d"]  # lists are replaced whole


def test_single_path_string_is_accepted(tmp_path):
    a = write(tmp_path, "a.yaml", "task: dashcam_mcq\n")
    assert load_config(a).task == "dashcam_mcq"


def test_overrides_use_yaml_scalar_rules():
    cfg = load_config([DATA, SFT], [
        "training.learning_rate=1e-5",
        "lora.target_modules=[q_proj,v_proj]",
        "model.name_or_path=null",
        "video.resolution={height: 224}",
        "temporal.use_temporal_tokens=true",
        "task_options.prompt_style=short",
    ])
    assert cfg.training.learning_rate == 1e-5
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.model.name_or_path is None
    assert (cfg.video.resolution.height, cfg.video.resolution.width) == (224, 384)
    assert cfg.temporal.use_temporal_tokens is True
    assert cfg.task_options == {"prompt_style": "short"}


def test_override_list_items():
    cfg = load_config([RL], ["rewards[1].weight=2", "rewards.0.scale=0.5"])
    assert cfg.rewards[1].weight == 2.0
    assert cfg.rewards[0].options == {"scale": 0.5}
    assert "has no item 5" in error_of([RL], ["rewards[5].weight=1"])
    assert "has no item 0" in error_of([], ["rewards.0.weight=1"])


def test_override_whole_list_of_rewards():
    cfg = load_config([], ["rewards=[{name: temporal_iou}, {name: format, weight: 0.5}]"])
    assert [(r.name, r.weight) for r in cfg.rewards] == [("temporal_iou", 1.0), ("format", 0.5)]


@pytest.mark.parametrize("text", ["training.learning_rate", "=3", "training..x=1", "a.b=[unclosed"])
def test_bad_override_syntax(text):
    with pytest.raises(ConfigError, match="--set"):
        load_config([], [text])


def test_parse_override():
    assert parse_override("a.b=1e-5") == (("a", "b"), "1e-5")
    assert parse_override("a.b=") == (("a", "b"), None)
    assert parse_override("rewards[2].mode=recall") == (("rewards", 2, "mode"), "recall")


def test_override_into_a_value_is_an_error():
    assert error_of([], ["task.name=x"]).startswith("--set task.name=x: 'task' must be a string, got {'name'")
    assert "'training.seed' is a value, not a section" in error_of([SFT], ["training.seed.x=1"])


def test_apply_overrides_returns_a_new_checked_config():
    base = default_config()
    cfg = apply_overrides(base, ["training.seed=7"])
    assert cfg.training.seed == 7 and base.training.seed == 42
    with pytest.raises(ConfigError, match="did you mean 'seed'"):
        apply_overrides(base, ["training.sed=7"])


# ---- error messages -------------------------------------------------------------------------


def test_unknown_key_names_file_line_and_close_match(tmp_path):
    path = write(tmp_path, "sft.yaml", "training:\n  seed: 1\n  learnin_rate: 1e-4\n")
    assert error_of([path]) == f"{path}:3: unknown key 'training.learnin_rate' (did you mean 'learning_rate'?)"


def test_unknown_key_in_the_wrong_section_says_where_it_belongs(tmp_path):
    path = write(tmp_path, "x.yaml", "model:\n  num_generations: 8\n")
    assert "'num_generations' belongs in 'rl.num_generations'" in error_of([path])


def test_unknown_top_level_and_override_keys():
    message = error_of([], ["trainig.seed=1"])
    assert message == "--set trainig.seed=1: unknown key 'trainig' (did you mean 'training'?)"
    assert "keys of lora:" in error_of([], ["lora.zzz=1"])


@pytest.mark.parametrize("yaml_text,expected", [
    ("training:\n  seed: true\n", "'training.seed' must be an integer, got True (bool)"),
    ("training:\n  seed: 2.5\n", "'training.seed' must be an integer, got 2.5"),
    ("training:\n  learning_rate: fast\n", "'training.learning_rate' must be a number, got 'fast'"),
    ("training:\n  bf16: 'yes'\n", "'training.bf16' must be true or false"),
    ("training:\n  bf16: 1\n", "'training.bf16' must be true or false"),
    ("dataset:\n  name: 2024\n", "'dataset.name' must be a string, got 2024 (int); quote it"),
    ("video:\n  sampling_strategy: unifrom\n", "(did you mean 'uniform'?)"),
    ("video: 3\n", "'video' must be a mapping (a section), got 3"),
    ("lora:\n  target_modules: [q_proj, 3]\n", "'lora.target_modules[1]' must be a string, got 3 (int)"),
    ("model:\n  torch_dtype: bf16\n", "one of 'auto', 'bfloat16', 'float16', 'float32'"),
    ("task_options: [1]\n", "'task_options' must be a mapping"),
    ("rewards:\n  - weight: 1\n", "'rewards[0]' needs a 'name'"),
    ("rewards: {name: x}\n", "'rewards' must be a list of"),
])
def test_wrong_types_name_the_key_and_line(tmp_path, yaml_text, expected):
    path = write(tmp_path, "c.yaml", yaml_text)
    message = error_of([path])
    assert expected in message
    assert message.startswith(f"{path}:")


@pytest.mark.parametrize("override,expected", [
    ("dataset.max_invalid_fraction=1.5", "must be between 0 and 1 (got 1.5)"),
    ("video.max_frames=0", "must be >= 1"),
    ("training.max_steps=0", "must be > 0, or -1 for no limit"),
    ("validation.split_fraction=1", "must be >= 0 and < 1"),
    ("duration_batching.target_batch_duration=-5", "must be > 0"),
])
def test_value_checks(override, expected):
    assert expected in error_of([], [override])


def test_cross_field_checks():
    assert "bf16 and fp16 are both true" in error_of([], ["training.fp16=true"])
    assert "choose one" in error_of([], ["duration_batching.enabled=true", "token_batching.enabled=true"])
    assert "below min_batch_size" in error_of([], ["duration_batching.min_batch_size=4",
                                                   "duration_batching.max_batch_size=2"])
    assert "enable one or the other" in error_of([], ["duration_batching.enabled=true",
                                                      "dataloader.sampler=sequential"])


def test_numeric_strings_are_coerced_where_the_field_is_numeric(tmp_path):
    path = write(tmp_path, "n.yaml", "training:\n  learning_rate: 1e-4\n  max_steps: 1e3\n"
                                     "  num_train_epochs: 2\nvideo:\n  fps: '2'\n")
    cfg = load_config([path])
    assert cfg.training.learning_rate == 1e-4 and isinstance(cfg.training.learning_rate, float)
    assert cfg.training.max_steps == 1000 and isinstance(cfg.training.max_steps, int)
    assert cfg.training.num_train_epochs == 2.0 and cfg.video.fps == 2.0


def test_all_problems_are_reported_at_once(tmp_path):
    path = write(tmp_path, "many.yaml", "training:\n  learnin_rate: 1\n  seed: x\nvideo:\n  max_frames: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config([path], ["lora.r=abc"])
    problems = info.value.problems
    assert len(problems) == 4
    assert str(info.value).startswith("4 problems in the configuration:")
    assert problems[-1].startswith("--set lora.r=abc: 'lora.r' must be an integer")
    assert [p.split(":")[1] for p in problems[:3]] == ["2", "3", "5"]


def test_later_file_is_blamed_for_the_value_it_set(tmp_path):
    a = write(tmp_path, "a.yaml", "training:\n  seed: 1\n")
    b = write(tmp_path, "b.yaml", "\n\ntraining:\n  seed: nope\n")
    assert error_of([a, b]).startswith(f"{b}:4: 'training.seed'")


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "training:\n  seed: 1\n  lr: [1, 2\n")
    assert re.match(rf"{re.escape(path)}:\d+: not valid YAML", error_of([path]))


def test_missing_file_and_non_mapping(tmp_path):
    assert "config file not found" in error_of([str(tmp_path / "nope.yaml")])
    path = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    assert "must be a mapping of sections" in error_of([path])


def test_duplicate_keys_are_errors(tmp_path):
    path = write(tmp_path, "dup.yaml", "lora:\n  r: 4\n  r: 8\n")
    assert error_of([path]) == f"{path}:3: duplicate key 'lora.r' (also on line 2); YAML keeps only the last one"


def test_empty_file_and_empty_section(tmp_path):
    empty = write(tmp_path, "empty.yaml", "# nothing yet\n")
    section = write(tmp_path, "section.yaml", "lora:\n  # r: 8\n")
    assert load_config([empty, section]) == VtgConfig()


def test_yaml_anchors_and_merge_keys(tmp_path):
    path = write(tmp_path, "anchors.yaml", "video: &v\n  max_frames: 8\n"
                                           "validation:\n  <<: {batch_size: 2}\n  split_fraction: 0.1\n")
    cfg = load_config([path])
    assert cfg.video.max_frames == 8 and cfg.validation.batch_size == 2


# ---- rewards and round trips ----------------------------------------------------------------


def test_reward_options_stay_free():
    cfg = from_dict({"rewards": [{"name": "refuse_iou", "weight": 2, "threshold": 0.5, "nested": {"a": [1]}},
                                 {"name": "format", "options": {"strict": True}}]})
    assert cfg.rewards[0] == RewardEntry(name="refuse_iou", weight=2.0, options={"threshold": 0.5, "nested": {"a": [1]}})
    assert cfg.rewards[1].options == {"strict": True}
    assert to_dict(cfg)["rewards"][1] == {"name": "format", "weight": 1.0, "strict": True}


def test_dump_and_load_round_trip(tmp_path):
    for cfg in (default_config(), default_config("rl"),
                load_config([DATA, SFT], ["lora.target_modules=all-linear", "training.save_total_limit=null",
                                          "task_options={choices: [A, B], n: 2}", "deepspeed=zero2"])):
        path = tmp_path / "run" / "config.yaml"
        text = dump_yaml(cfg, path)
        assert path.read_text() == text == cfg.dump_yaml()
        assert load_config([str(path)]) == cfg
        assert from_dict(yaml.safe_load(text)) == cfg


def test_properties():
    cfg = VtgConfig()
    assert cfg.train_batch_size == 2 and cfg.sampler_name == "random"
    cfg = load_config([], ["dataloader.batch_size=6", "duration_batching.enabled=true"])
    assert cfg.train_batch_size == 6 and cfg.sampler_name == "duration"
    assert load_config([], ["token_batching.enabled=true"]).sampler_name == "token_budget"


_scalar_overrides = st.one_of(
    st.floats(min_value=1e-9, max_value=1.0, allow_nan=False).map(lambda v: f"training.learning_rate={v!r}"),
    st.integers(min_value=1, max_value=10_000).map(lambda v: f"video.max_frames={v}"),
    st.booleans().map(lambda v: f"lora.enabled={str(v).lower()}"),
    st.sampled_from(["uniform", "random", "keyframe"]).map(lambda v: f"video.sampling_strategy={v}"),
    st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), max_size=4).map(
        lambda v: f"lora.target_modules=[{', '.join(v)}]"),
    st.text(alphabet="abcxyz/._- ", min_size=1, max_size=12).map(lambda v: f"dataset.name={json.dumps(v)}"),
    st.floats(min_value=0.0, max_value=5.0, allow_nan=False).map(lambda v: f"rewards=[{{name: r, weight: {v!r}, k: {v!r}}}]"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_scalar_overrides, max_size=6))
def test_round_trip_property(tmp_path, overrides):
    cfg = load_config([], overrides)
    path = tmp_path / "c.yaml"
    dump_yaml(cfg, path)
    assert load_config([str(path)]) == cfg
