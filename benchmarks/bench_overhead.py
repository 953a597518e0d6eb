"""Framework overhead: SFT and GRPO steps through vtg vs a hand-written TRL script, side by side.

Target: vtg keeps >= 0.95x the hand-written script's steady-state steps/second, for SFT and GRPO.

What is compared
----------------
Both sides train the same tiny Qwen3-VL (``vtg_core.testing.save_tiny_model``, float32, sdpa,
full fine-tuning as in the offline demo) on the same generated grounding clips, with the same
prompts and answers, the same number of frames (uniform, ``video.max_frames``) at the same size,
the same batch size, learning rate, scheduler, seed, logging interval, number of steps, number of
generations and completion length. Neither side saves a checkpoint inside the timed window.

- **vtg**: ``vtg train``'s own code path with the offline demo's settings
  (``vtg_core.train.run.DEMO_OVERRIDES`` over the packaged defaults, as ``vtg train --task
  temporal_grounding`` resolves them): ``build_task`` / ``load_split`` / the registry's backend,
  then :func:`vtg_core.train.sft.run_sft` or :func:`vtg_core.train.grpo.run_grpo`. Whatever those
  do per step is measured: vtg's decoder and frame cache, the task's prompt, the backend's
  ``encode``, the video collator, DataLoader workers as configured, per-part learning rates,
  ``VideoGRPOTrainer``'s video plumbing, its placeholder checks and ``completions.jsonl``.
- **script** (what a user writes without vtg): frames decoded with PyAV in the Dataset (uniform
  picks: the centre frame of ``max_frames`` equal runs, which are also vtg's picks), the prompt
  rendered with the processor's chat template, the processor called with ``video_metadata``,
  labels on the answer tokens; SFT with a plain ``transformers.Trainer`` and a 20-line padding
  collator (Trainer defaults otherwise: no DataLoader workers).
  GRPO: TRL's ``GRPOTrainer`` cannot train on video (its prompts carry images only, and its
  scoring passes take no ``pixel_values_videos``), so the script is the smallest subclass that
  can: it encodes each distinct prompt of a generation batch once (frames decoded by the script),
  hands TRL the ids and video tensors for generation, carries each row's video through TRL's
  shuffle in the batch, and binds it to the model in ``_get_per_token_logps_and_entropies`` with
  ``mm_token_type_ids`` rebuilt from the ids. Everything else (generation, rewards, advantages,
  the KL reference, the loss) is TRL's, as in vtg. Its rewards are two hand-written functions
  (IoU and recall of the parsed segment) with vtg's weights (1.0, 0.5).
  The GRPO reference model: TRL reloads it from the model path; vtg copies the policy (both a
  frozen full copy of the same weights: the same work per step).

The data set is the offline demo's (``DEMO_DATA``, validation split left out), large enough that
every timed step reads clips for the first time: vtg's frame cache, which serves later epochs, gets
no hits inside the window, so the comparison is the first epoch (the worst case for vtg).
Temporal tokens are switched off on both sides (see :func:`vtg_config`).

Timing: a ``TrainerCallback`` stamps each optimizer step's end; a run's rate is
``(steps - warmup) / (t[steps] - t[warmup])``, so loading, data generation, model build, the first
steps (allocator warm-up, DataLoader start) and the final save are excluded. The two sides
alternate (the order swaps every round) and each figure is the median over ``--rounds``. Sampling
differs between the sides (different RNG streams), so GRPO completions may end at different
lengths; the tiny model rarely samples its end token, so nearly all run to the length limit.

Columns: ``ratio`` is median vtg steps/s over median script steps/s (the PASS/FAIL figure);
``paired`` the median of per-round ratios; ``cpu`` the script's CPU seconds per step over vtg's
(this process, all threads), which other load on a shared machine disturbs much less than the
wall clock. A last section times the SFT data path alone (decode, prompt, processor; no model),
minimum over passes, the steadiest figure of all.

    python benchmarks/bench_overhead.py [--rounds 3] [--steps 12] [--warmup 2] [--threads 1]
                                        [--only sft|grpo] [--set key=value ...]

``--set`` adds vtg config overrides (also applied to the script where the script has the setting,
e.g. ``training.per_device_train_batch_size``), e.g. ``--set dataloader.num_workers=0``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 0.95


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def step_timer(warmup: int):
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Stamps every optimizer step's end; :meth:`rate` is the steady-state steps/second."""

        def __init__(self) -> None:
            self.stamps: list[tuple[float, float]] = []

        def on_step_end(self, args, state, control, **kwargs):
            # Wall clock for throughput; this process's CPU time (all its threads) as a second
            # view that other load on a shared machine disturbs less.
            self.stamps.append((time.perf_counter(), time.process_time()))

        def rate(self) -> tuple[float, float]:
            """(steps per wall-clock second, CPU seconds per step) over the steps after warm-up."""
            if len(self.stamps) <= max(warmup, 1):
                raise RuntimeError(f"only {len(self.stamps)} steps ran; need more than --warmup {warmup}")
            first = self.stamps[max(warmup, 1) - 1]
            n = len(self.stamps) - max(warmup, 1)
            return n / (self.stamps[-1][0] - first[0]), (self.stamps[-1][1] - first[1]) / n

    return StepTimer()


# ---------------------------------------------------------------------------------------------
# Shared setup (untimed)
# ---------------------------------------------------------------------------------------------


def vtg_config(method: str, model_dir: str, data: dict[str, str], steps: int, extra: list[str]):
    from vtg_core.config import default_config
    from vtg_core.train.run import DEMO_OVERRIDES

    stage = "rl" if method == "grpo" else "sft"
    # Temporal tokens stay off: with them vtg grows the vocabulary and trains only the new rows,
    # which the script would have to replicate to see the same sequences; that is a feature's cost,
    # not the framework's.
    return default_config(stage, [*DEMO_OVERRIDES, "temporal.use_temporal_tokens=false",
                                  f"model.name_or_path={model_dir}", f"dataset.annotation_file={data['train']}",
                                  f"dataset.video_dir={data['video_dir']}", "validation.annotation_file=null",
                                  f"training.max_steps={steps}", *extra])


def script_rows(config) -> list[dict[str, Any]]:
    """The data set as the script sees it: clip path, chat messages, answer and reward columns.

    Prompts and answers are taken once from vtg's task (same text on both sides, so the same
    sequence lengths); everything done with them per step is the script's own code.
    """
    from vtg_core.train.run import build_task, load_split

    task = build_task(config)
    rows = []
    for sample in load_split(task, config.dataset.annotation_file, config, config.dataset.video_dir):
        messages = task.build_messages(sample, rng=random.Random(f"{config.training.seed}:{sample.id}"))
        # Arrow (datasets) needs one schema for every content part.
        messages = [{"role": m["role"], "content": [{"type": p["type"], "text": p.get("text")} for p in m["content"]]}
                    for m in messages]
        rows.append({"id": sample.id, "video": sample.video, "messages": messages, "answer": task.target(sample),
                     "timestamp": list(task.reward_columns(sample)["timestamp"]), "duration": sample.duration})
    return rows


# ---------------------------------------------------------------------------------------------
# vtg side
# ---------------------------------------------------------------------------------------------


def run_vtg(method: str, config, out_dir: str, warmup: int) -> tuple[float, float]:
    from vtg_core.plugins import get_registry
    from vtg_core.train.run import build_task, load_split

    task = build_task(config)
    samples = load_split(task, config.dataset.annotation_file, config, config.dataset.video_dir)
    backend = get_registry().get("backend", config.model.backend).load()()
    timer = step_timer(warmup)
    if method == "sft":
        from vtg_core.train.sft import run_sft

        run_sft(config, task=task, train_samples=samples, output_dir=out_dir, backend=backend, callbacks=[timer])
    else:
        from vtg_core.train.grpo import run_grpo

        run_grpo(config, task=task, train_samples=samples, output_dir=out_dir, backend=backend, callbacks=[timer])
    return timer.rate()


# ---------------------------------------------------------------------------------------------
# The hand-written script (no vtg code below this line, except what the caller passes in)
# ---------------------------------------------------------------------------------------------


def decode(path: str, num_frames: int):
    """``num_frames`` frames spread over the clip (centre of each of ``num_frames`` equal runs)
    with PyAV, and the ``video_metadata`` Qwen3-VL needs to print their timestamps."""
    import av
    import numpy as np

    with av.open(path) as container:
        stream = container.streams.video[0]
        total, fps = stream.frames, float(stream.average_rate)
        n = min(num_frames, total)
        picks = [((k * total) // n + ((k + 1) * total) // n) // 2 for k in range(n)]
        wanted = set(picks)
        # Short clips: decode straight through and convert only the picked frames.
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(stream)) if i in wanted]
    if len(frames) != n:
        raise RuntimeError(f"{path}: decoded {len(frames)} of {n} frames")
    return np.stack(frames), {"fps": fps, "frames_indices": picks, "total_num_frames": total}


def encode_prompt(processor, messages, path: str, num_frames: int):
    frames, metadata = decode(path, num_frames)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False,
                     return_tensors="pt")


def sft_example(processor, row, num_frames: int):
    """One training example: the prompt with its video, then the answer; labels on the answer."""
    import torch

    enc = encode_prompt(processor, row["messages"], row["video"], num_frames)
    answer = processor.tokenizer(row["answer"] + "<|im_end|>", add_special_tokens=False,
                                 return_tensors="pt")["input_ids"]
    ex = dict(enc)
    n = ex["input_ids"].shape[1]
    ex["input_ids"] = torch.cat([ex["input_ids"], answer], 1)
    ex["attention_mask"] = torch.ones_like(ex["input_ids"])
    ex["mm_token_type_ids"] = torch.cat([ex["mm_token_type_ids"], torch.zeros_like(answer)], 1)
    ex["labels"] = ex["input_ids"].clone()
    ex["labels"][:, :n] = -100
    return ex


def load_model(model_dir: str):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    return model, AutoProcessor.from_pretrained(model_dir)


def script_sft(rows, model_dir: str, out_dir: str, h: dict[str, Any], warmup: int) -> tuple[float, float]:
    import torch
    from transformers import Trainer, TrainingArguments

    model, processor = load_model(model_dir)
    tokenizer = processor.tokenizer

    class ClipDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return sft_example(processor, rows[i], h["max_frames"])

    def collate(examples):
        width = max(e["input_ids"].shape[1] for e in examples)
        pads = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0, "mm_token_type_ids": 0, "labels": -100}
        batch = {k: torch.cat([torch.nn.functional.pad(e[k], (0, width - e[k].shape[1]), value=v) for e in examples])
                 for k, v in pads.items()}
        batch["pixel_values_videos"] = torch.cat([e["pixel_values_videos"] for e in examples])
        batch["video_grid_thw"] = torch.cat([e["video_grid_thw"] for e in examples])
        return batch

    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=h["batch_size"], gradient_accumulation_steps=h["grad_accum"],
        learning_rate=h["lr"], max_steps=h["steps"], warmup_steps=h["warmup_ratio"], weight_decay=h["weight_decay"],
        lr_scheduler_type=h["scheduler"], max_grad_norm=h["max_grad_norm"], logging_steps=h["logging_steps"],
        save_strategy="no", report_to="none", seed=h["seed"], remove_unused_columns=False, disable_tqdm=True,
        bf16=h["bf16"], dataloader_num_workers=h["workers"],
    )
    timer = step_timer(warmup)
    Trainer(model=model, args=args, train_dataset=ClipDataset(), data_collator=collate, callbacks=[timer]).train()
    return timer.rate()


def _answer_span(completion, duration: float):
    text = completion[0]["content"] if isinstance(completion, list) else completion
    m = re.search(r"<answer>\s*([\d.]+)\s*to\s*([\d.]+)\s*</answer>", text)
    if not m:
        return None
    a, b = float(m.group(1)) * duration, float(m.group(2)) * duration
    return (a, b) if b > a else None


def iou_reward(completions, timestamp, duration, **kwargs):
    out = []
    for c, (s, e), d in zip(completions, timestamp, duration, strict=True):
        span = _answer_span(c, d)
        if span is None:
            out.append(0.0)
            continue
        inter = max(0.0, min(e, span[1]) - max(s, span[0]))
        out.append(inter / (max(e, span[1]) - min(s, span[0])))
    return out


def recall_reward(completions, timestamp, duration, **kwargs):
    out = []
    for c, (s, e), d in zip(completions, timestamp, duration, strict=True):
        span = _answer_span(c, d)
        out.append(0.0 if span is None else max(0.0, min(e, span[1]) - max(s, span[0])) / (e - s))
    return out


def script_grpo(rows, model_dir: str, out_dir: str, h: dict[str, Any], warmup: int) -> tuple[float, float]:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, processor = load_model(model_dir)
    video_token = model.config.video_token_id

    class VideoGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose prompts carry a video: encode per prompt, bind per scored row."""

        _pending = None  # this generation batch's encoded prompts, one per row
        _scored = None  # the rows being scored now

        def _generate_and_score_completions(self, inputs):
            cache: dict[str, Any] = {}
            encoded = []
            for row in inputs:  # RepeatSampler repeats each prompt G times: encode it once
                if row["id"] not in cache:
                    cache[row["id"]] = encode_prompt(processor, row["prompt"], row["video"], h["max_frames"])
                encoded.append(cache[row["id"]])
            self._pending = self._scored = encoded
            try:
                out = super()._generate_and_score_completions(inputs)
            finally:
                self._pending = self._scored = None
            out["videos"] = encoded  # a list: TRL shuffles and splits it together with the tensors
            return out

        def _tokenize_prompts(self, prompts):
            enc = self._pending
            fields = {"pixel_values_videos": torch.cat([e["pixel_values_videos"] for e in enc]),
                      "video_grid_thw": torch.cat([e["video_grid_thw"] for e in enc]),
                      "mm_token_type_ids": [e["mm_token_type_ids"][0].tolist() for e in enc]}
            return [e["input_ids"][0].tolist() for e in enc], None, fields

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self._scored = inputs["videos"]
            try:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            finally:
                self._scored = None

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False, **kw):
            batch_size = batch_size or input_ids.size(0)
            logps, entropies = [], []
            for start in range(0, input_ids.size(0), batch_size):
                rows = self._scored[start:start + batch_size]
                ids = input_ids[start:start + batch_size]
                mask = attention_mask[start:start + batch_size]
                types = torch.zeros_like(ids)
                types[:, :-logits_to_keep][ids[:, :-logits_to_keep] == video_token] = 2
                labels = ids.masked_fill(mask == 0, -100)
                labels[:, :-logits_to_keep] = -100
                with self.accelerator.autocast():
                    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True,
                                pixel_values_videos=torch.cat([r["pixel_values_videos"] for r in rows]).to(ids.device),
                                video_grid_thw=torch.cat([r["video_grid_thw"] for r in rows]).to(ids.device),
                                mm_token_type_ids=types)
                logps.append(out.log_probs[:, -logits_to_keep:])
                if compute_entropy:
                    entropies.append(out.entropy[:, -logits_to_keep:])
            return torch.cat(logps), torch.cat(entropies) if compute_entropy else None, None

    dataset = Dataset.from_list([{"id": r["id"], "video": r["video"], "prompt": r["messages"],
                                  "timestamp": r["timestamp"], "duration": r["duration"]} for r in rows])
    args = GRPOConfig(
        output_dir=out_dir, per_device_train_batch_size=h["batch_size"], gradient_accumulation_steps=h["grad_accum"],
        learning_rate=h["lr"], max_steps=h["steps"], warmup_steps=min(h["warmup_ratio"], 0.999999),
        weight_decay=h["weight_decay"], lr_scheduler_type=h["scheduler"], max_grad_norm=h["max_grad_norm"],
        logging_steps=h["logging_steps"], save_strategy="no", report_to="none", seed=h["seed"],
        remove_unused_columns=False, disable_tqdm=True, num_generations=h["num_generations"],
        max_completion_length=h["max_completion_length"], temperature=h["temperature"], beta=h["beta"],
        epsilon=h["epsilon"], loss_type="grpo", scale_rewards="group", reward_weights=[1.0, 0.5],
        log_completions=False, bf16=h["bf16"],
    )
    timer = step_timer(warmup)
    trainer = VideoGRPOTrainer(model=model, reward_funcs=[iou_reward, recall_reward], args=args, train_dataset=dataset,
                               processing_class=processor, callbacks=[timer])
    # TRL suppresses the image placeholder only; a sampled video placeholder would have no features.
    trainer.generation_config.suppress_tokens = sorted({*(trainer.generation_config.suppress_tokens or []),
                                                        video_token})
    trainer.train()
    return timer.rate()


def data_path(config, rows, model_dir: str, passes: int, per_pass: int) -> dict[str, float]:
    """Milliseconds per SFT example on each side's data path alone (no model step), min over passes.

    The minimum of several passes is what the code costs when nothing else interferes, so this
    is the least noisy view on a shared machine. Every pass takes clips not loaded before (the
    first epoch, where vtg's frame cache has nothing yet); ``vtg, cache hit`` reads a pass again.
    """
    from vtg_core.plugins import get_registry
    from vtg_core.train.dataset import VideoSampleDataset
    from vtg_core.train.run import build_task, load_split

    task = build_task(config)
    samples = load_split(task, config.dataset.annotation_file, config, config.dataset.video_dir)
    backend = get_registry().get("backend", config.model.backend).load()()
    _model, processor = backend.load(config)
    # The dataset run_sft builds (its frame cache comes from the config's video section).
    dataset = VideoSampleDataset(samples, task, processor, video=config.video, encode=backend.encode,
                                 seed=config.training.seed)
    _script_model, script_processor = load_model(model_dir)
    frames = config.video.max_frames
    if len(samples) < 2 * passes * per_pass:
        passes = max(1, len(samples) // (2 * per_pass))
    times: dict[str, list[float]] = {"vtg": [], "vtg, cache hit": [], "script": []}
    for p in range(passes):
        vtg_idx = range(2 * p * per_pass, (2 * p + 1) * per_pass)
        script_idx = range((2 * p + 1) * per_pass, (2 * p + 2) * per_pass)
        for name, fn, idx in (("vtg", dataset.__getitem__, vtg_idx),
                              ("vtg, cache hit", dataset.__getitem__, vtg_idx),
                              ("script", lambda i: sft_example(script_processor, rows[i], frames), script_idx)):
            start = time.perf_counter()
            for i in idx:
                fn(i)
            times[name].append((time.perf_counter() - start) / len(idx) * 1000)
    return {name: min(v) for name, v in times.items()}


def script_settings(config) -> dict[str, Any]:
    """The hyperparameters the script is written with: the same values vtg resolved."""
    import torch

    t, rl = config.training, config.rl
    return {"batch_size": config.train_batch_size, "grad_accum": t.gradient_accumulation_steps,
            "lr": t.learning_rate, "steps": t.max_steps, "warmup_ratio": t.warmup_ratio, "weight_decay": t.weight_decay,
            "scheduler": t.lr_scheduler_type, "max_grad_norm": t.max_grad_norm, "logging_steps": t.logging_steps,
            "seed": t.seed, "max_frames": config.video.max_frames, "num_generations": rl.num_generations,
            "max_completion_length": rl.max_completion_length, "temperature": rl.temperature, "beta": rl.kl_coef,
            "epsilon": rl.clip_range, "workers": config.dataloader.num_workers,
            # vtg turns bf16 off without a GPU that has it; the script does the same.
            "bf16": bool(t.bf16) and torch.cuda.is_available() and torch.cuda.is_bf16_supported()}


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the timing")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads, both sides (1: the tiny model gains nothing from more)")
    parser.add_argument("--workers", type=int, default=0,
                        help="SFT DataLoader workers, both sides (0: the Trainer default a script gets; vtg's "
                             "config default is 4, GRPO always uses 0)")
    parser.add_argument("--only", choices=("sft", "grpo"), action="append")
    parser.add_argument("--vtg-decoder", choices=("auto", "pyav"), default="auto",
                        help="diagnosis: 'pyav' hides decord from vtg, so decoder='auto' picks PyAV as the script does")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", dest="json_path", help="also write the raw rates here")
    parser.add_argument("--data-passes", type=int, default=5,
                        help="passes of the per-example data-path timing (0 skips it)")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")

    import torch
    import transformers

    from vtg_core.data.synthetic import make_grounding_dataset
    from vtg_core.testing import save_tiny_model
    from vtg_core.train.run import DEMO_DATA

    transformers.logging.set_verbosity_error()
    if args.vtg_decoder == "pyav":
        from vtg_core.data.video import decode as vtg_decode

        vtg_decode._decord_module = False  # what _import_decord caches when decord is not installed
    torch.set_num_threads(args.threads)
    methods = args.only or ["sft", "grpo"]
    holder = tempfile.TemporaryDirectory(prefix="vtg-bench-overhead-")  # clips, model, run outputs
    tmp = Path(holder.name)
    data = make_grounding_dataset(tmp / "data", seed=0, **{**DEMO_DATA, "num_val": 0})
    model_dir = save_tiny_model(tmp / "model")
    overrides = [f"dataloader.num_workers={args.workers}", *args.overrides]
    configs = {m: vtg_config(m, model_dir, data, args.steps, overrides) for m in methods}
    rows = script_rows(configs[methods[0]])

    print(f"Framework overhead: vtg vs a hand-written TRL script (tiny Qwen3-VL, {len(rows)} clips, "
          f"torch threads {args.threads}, {args.steps} steps per run, first {args.warmup} untimed, "
          f"vtg decoder {args.vtg_decoder})")
    for m in methods:
        h = script_settings(configs[m])
        extra = (f", G={h['num_generations']}, completion {h['max_completion_length']} tokens, beta {h['beta']}"
                 if m == "grpo" else "")
        print(f"  {m}: batch {h['batch_size']}, {h['max_frames']} frames at "
              f"{configs[m].video.resolution.height}x{configs[m].video.resolution.width}{extra}; "
              f"dataloader workers {configs[m].dataloader.num_workers if m == 'sft' else 0} (both sides), "
              f"vtg frame cache {'on' if configs[m].video.cache.enabled else 'off'}")

    rates: dict[str, dict[str, list[float]]] = {m: {"vtg": [], "script": []} for m in methods}
    cpu: dict[str, dict[str, list[float]]] = {m: {"vtg": [], "script": []} for m in methods}
    run_id = 0
    for rnd in range(args.rounds):
        for m in methods:
            order = ["vtg", "script"] if rnd % 2 == 0 else ["script", "vtg"]
            for side in order:
                run_id += 1
                out = str(tmp / f"run{run_id}-{side}-{m}")
                torch.manual_seed(0)
                # The Trainers print their logs; keep them out of the report (both sides alike).
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    if side == "vtg":
                        rate, cpu_step = run_vtg(m, configs[m], out, args.warmup)
                    elif m == "sft":
                        rate, cpu_step = script_sft(rows, model_dir, out, script_settings(configs[m]), args.warmup)
                    else:
                        rate, cpu_step = script_grpo(rows, model_dir, out, script_settings(configs[m]), args.warmup)
                rates[m][side].append(rate)
                cpu[m][side].append(cpu_step)
                print(f"  round {rnd + 1} {m:4s} {side:6s} {rate:7.3f} steps/s  {cpu_step * 1000:7.1f} ms CPU/step",
                      flush=True)

    print("\nratio = vtg/script throughput; 'paired' = median of the per-round ratios; 'cpu' = script CPU "
          "time per step / vtg's")
    print(f"{'':6s}{'vtg steps/s':>13s}{'script steps/s':>16s}{'ratio':>8s}{'paired':>8s}{'cpu':>7s}   "
          f"{'per round':<36s}target {TARGET}")
    ok = True
    for m in methods:
        v, s = statistics.median(rates[m]["vtg"]), statistics.median(rates[m]["script"])
        ratios = [a / b for a, b in zip(rates[m]["vtg"], rates[m]["script"], strict=True)]
        cpu_ratio = statistics.median(cpu[m]["script"]) / statistics.median(cpu[m]["vtg"])
        verdict = "PASS" if v / s >= TARGET else "FAIL"
        ok &= verdict == "PASS"
        per_round = " ".join(f"{r:.2f}" for r in ratios)
        cpu_verdict = "PASS" if cpu_ratio >= TARGET else "FAIL"
        print(f"{m:6s}{v:13.3f}{s:16.3f}{v / s:8.3f}{statistics.median(ratios):8.3f}{cpu_ratio:7.3f}   "
              f"{per_round:<36s}{verdict} (cpu: {cpu_verdict})")
    if args.data_passes and "sft" in methods:
        per_example = data_path(configs["sft"], rows, model_dir, args.data_passes, per_pass=20)
        print("\nSFT data path alone (decode + prompt + processor, one example; min over passes; "
              "first epoch unless 'cache hit'):")
        for name, ms in per_example.items():
            print(f"  {name:16s}{ms:7.2f} ms/example")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"\nnote: load average {load:.1f} on {os.cpu_count()} cores while measuring: other processes "
              "shared the CPU, so wall-clock ratios are noisy; the 'cpu' column and the data-path "
              "minimums are the steadier figures.")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"steps_per_s": rates, "cpu_s_per_step": cpu,
                                                    "settings": vars(args)}, indent=2))
    holder.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
