"""Video inputs for TRL's ``GRPOTrainer``: a small subclass, :class:`VideoGRPOTrainer`.

Why a subclass. TRL's GRPO trainer (checked against trl 1.16.0 with transformers 5.23, see
:data:`TRL_CHECKED`) carries vision inputs only for *images*: it reads ``image`` / ``images``
columns, runs the processor on them and forwards ``pixel_values`` / ``image_grid_thw``. A video
reaches ``generate`` at best (through ``apply_chat_template``, which in transformers 5.23 needs
torchcodec to load a path); the scoring passes (old, reference and policy log-probabilities) get
no ``pixel_values_videos`` at all. The ``<|video_pad|>`` tokens are then embedded as text and the
loss is computed for a model that never saw the video, and nothing errors (verified: one step
trains "fine"). This class makes every forward the trainer runs see the video generation saw.

How video flows (one generation batch):

1. The dataloader yields each data-set row ``num_generations`` times in a row (TRL's
   ``RepeatSampler``). :meth:`VideoGRPOTrainer._generate_and_score_completions` encodes each
   distinct prompt once with ``encode_prompt(row)`` (frames decoded, the backend's ``encode``:
   chat template, placeholder expansion, Qwen3-VL ``video_metadata`` timestamps, Qwen2.5-VL
   ``second_per_grid_ts``) into an :class:`EncodedPrompt`. The repeated rows share that object, so
   a group's ids and video tensors are identical by construction (and decoded once, not G times).
2. TRL's own ``_generate_and_score_completions`` runs; it calls ``_tokenize_prompts``, which
   returns the encoded ids unpadded (TRL left-pads them itself, whatever the tokenizer's
   ``padding_side``), the concatenated visual tensors, and ``mm_token_type_ids`` as lists, which
   TRL left-pads exactly like the ids before ``generate``.
3. The per-row list of :class:`EncodedPrompt` is stored in the batch under :data:`VIDEO_KEY`.
   TRL's ``shuffle_sequence_dict`` / ``split_tensor_dict`` permute and slice list values together
   with the tensors, so after shuffling and splitting into ``steps_per_generation`` slices each row
   still carries its own video.
4. Scoring: the rows being scored are set around TRL's calls (``compute_loss``, and step 2 for the
   old / reference log-probs). ``_get_per_token_logps_and_entropies`` cuts the batch into TRL's
   chunks and, per chunk, binds that chunk's visual tensors and an ``mm_token_type_ids`` rebuilt
   from the padded ids to the model, then runs TRL's own implementation (fused LM head,
   temperature, autocast are TRL's, not copied). Before each forward it checks, per row, that the
   placeholder tokens in the ids equal the row's visual features; a mismatch raises.

Overridden TRL methods and why:

- ``__init__``: adds the video placeholder to ``suppress_tokens`` (TRL suppresses only the image
  token; a sampled ``<|video_pad|>`` would have no features); for full fine-tuning with
  ``beta > 0`` uses a copy of the starting policy as the reference instead of TRL reloading it
  from ``name_or_path`` (which misses added tokens and fails for a model built in memory).
- ``create_optimizer``: the backend's per-part parameter groups, as SFT uses.
- ``_generate_and_score_completions``, ``_tokenize_prompts``, ``compute_loss``,
  ``_get_per_token_logps_and_entropies``: the video plumbing above.
- ``log``: also appends each generation batch's completions with every reward to
  ``completions.jsonl`` (TRL's own table needs pandas/parquet or wandb and has no sample ids).

Not supported (refused at construction): vLLM generation (TRL hands vLLM images only), tools,
environments, ``rollout_func``; image inputs next to video prompts. These are private TRL methods;
a TRL release outside :data:`TRL_CHECKED` triggers a warning, and ``tests/test_grpo.py`` checks
the token/feature counts and compares trainer log-probs with a direct forward pass.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from ..errors import DataError
from .checkpoints import AtomicCheckpointMixin  # checkpoint-N appears whole or not at all

VIDEO_KEY = "vtg_video_prompts"
"""Key of the per-row :class:`EncodedPrompt` list in the batches this trainer builds."""

TRL_CHECKED = ("1.16",)
"""TRL release lines (major.minor) this extension was verified against (private methods are overridden)."""

# Keys of a processor's output that are per-token (aligned with input_ids) rather than visual.
_TEXT_KEYS = frozenset({"input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids", "labels"})


@attrs.frozen(eq=False)
class EncodedPrompt:
    """One prompt ready for the policy: token ids and the visual tensors they refer to.

    - ``key``: identifies the prompt (the sample id); rows with the same key share this object.
    - ``prompt_ids``: token ids of the chat-templated prompt with the assistant turn opened,
      placeholders already expanded, unpadded.
    - ``visual``: visual tensors of this prompt only, each concatenable along dim 0 with other
      prompts' (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``...).
    - ``placeholder_id`` / ``num_placeholders``: the video placeholder token and how many of them
      the visual features fill; checked against the ids before every forward.
    - ``token_types``: per-token modality (0 text, 1 image, 2 video) for models that take
      ``mm_token_type_ids`` (Qwen3-VL, Qwen2.5-VL); ``None`` for models that do not.
    """

    key: str
    prompt_ids: tuple[int, ...] = attrs.field(converter=tuple)
    visual: dict[str, torch.Tensor]
    placeholder_id: int | None
    num_placeholders: int
    token_types: tuple[int, ...] | None = None


def encoded_from_processor_output(key: str, batch: Any, *, placeholder_id: int | None,
                                  num_placeholders: int | None = None,
                                  merge_size: int | None = None) -> EncodedPrompt:
    """Build an :class:`EncodedPrompt` from a processor's output for ONE prompt (batch of 1).

    ``num_placeholders`` defaults to what ``video_grid_thw`` implies (Qwen families:
    ``prod(t, h, w) / merge_size**2`` per video) or, failing that, to the count in the ids.
    """
    ids = batch["input_ids"]
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):
        if len(ids) != 1:
            raise ValueError(f"expected the processor output of one prompt, got a batch of {len(ids)}")
        ids = ids[0]
    visual = {k: v for k, v in batch.items() if k not in _TEXT_KEYS and isinstance(v, torch.Tensor)}
    if num_placeholders is None:
        grid = visual.get("video_grid_thw")
        if grid is not None and merge_size:
            num_placeholders = int(grid.prod(-1).sum().item()) // (merge_size**2)
        else:
            num_placeholders = sum(1 for t in ids if t == placeholder_id)
    token_types = None
    if "mm_token_type_ids" in batch:
        tt = batch["mm_token_type_ids"]
        tt = tt.tolist() if hasattr(tt, "tolist") else tt
        token_types = tuple(tt[0] if tt and isinstance(tt[0], list) else tt)
    return EncodedPrompt(key=key, prompt_ids=ids, visual=visual, placeholder_id=placeholder_id,
                         num_placeholders=num_placeholders, token_types=token_types)


class _WithVisualInputs:
    """A model stand-in whose call adds fixed keyword arguments (one chunk's visual inputs).

    TRL's ``_get_per_token_logps_and_entropies`` only *calls* the model it is given, so binding
    the video tensors here lets TRL's own log-prob code run unchanged on video rows.
    """

    def __init__(self, model: Any, extra: dict[str, Any]):
        self._model = model
        self._extra = extra

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._model(*args, **kwargs, **self._extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def row_key(row: dict[str, Any]) -> str:
    """The identity of a data set row's prompt: its ``sample_id`` column, else its content."""
    if row.get("sample_id") is not None:
        return str(row["sample_id"])
    return json.dumps([row.get("video"), row.get("video_start"), row.get("video_end"), row.get("prompt")],
                      sort_keys=True, default=str)


class VideoGRPOTrainer(AtomicCheckpointMixin, GRPOTrainer):
    """``GRPOTrainer`` whose prompts carry a video (see the module docstring for the data flow).

    Extra arguments:

    - ``encode_prompt(row) -> EncodedPrompt``: turns a data set row (``prompt`` messages, ``video``
      path, trim window, ...) into ids + visual tensors. Called once per distinct prompt of a
      generation batch.
    - ``max_prompt_length``: a longer encoded prompt raises :class:`~vtg_core.errors.DataError`
      (``None``: no limit).
    - ``completion_log_every``: write ``completions.jsonl`` at every ``log`` call whose global step
      is a multiple of this (0 disables); ``completion_log_max`` caps the rows per write.
    """

    def __init__(self, *args: Any, encode_prompt: Callable[[dict[str, Any]], EncodedPrompt],
                 max_prompt_length: int | None = None, completion_log_every: int = 1,
                 completion_log_max: int = 64, param_groups_fn: Callable[[Any], list[dict[str, Any]]] | None = None,
                 batch_sampler: Any = None, **kwargs: Any):
        _check_trl_version()
        trl_args: GRPOConfig | None = kwargs.get("args")
        if trl_args is not None and trl_args.use_vllm:
            raise ValueError("VideoGRPOTrainer does not support use_vllm: TRL passes only images to vLLM, "
                             "so the video would be dropped from generation. Use transformers generation.")
        for unsupported in ("tools", "rollout_func", "environment_factory"):
            if kwargs.get(unsupported):
                raise ValueError(f"VideoGRPOTrainer does not support {unsupported!r}")
        model = kwargs.get("model", args[0] if args else None)
        # Full fine-tuning with a KL term: TRL would reload the reference from the model's
        # name_or_path, which misses tokens added since (and fails for a model built in memory).
        # The starting policy itself is the reference, so copy it instead (see _install_reference).
        reference = None
        if (trl_args is not None and trl_args.beta != 0.0 and model is not None and not isinstance(model, str)
                and not hasattr(model, "peft_config") and not trl_args.cast_lm_head_to_fp32
                and not trl_args.sync_ref_model):
            reference = copy.deepcopy(model).eval().requires_grad_(False)
            beta, trl_args.beta = trl_args.beta, 0.0
        try:
            super().__init__(*args, **kwargs)
        finally:
            if reference is not None:
                trl_args.beta = beta
        if reference is not None:
            self._install_reference(reference, beta)
        self._suppress_placeholders()
        self._encode_prompt = encode_prompt
        self._max_prompt_length = max_prompt_length
        self._param_groups_fn = param_groups_fn
        self._pending_prompts: list[EncodedPrompt] | None = None
        self._active_rows: Sequence[EncodedPrompt] | None = None
        self._completion_log_every = completion_log_every
        self._completion_log_max = completion_log_max
        self._completion_records: list[dict[str, Any]] = []
        # Qwen-style models need mm_token_type_ids next to video_grid_thw (M-RoPE); others reject it.
        self._uses_token_types = "mm_token_type_ids" in getattr(self.processing_class, "model_input_names", ())
        config = self.model.config
        self._token_type_of = {getattr(config, a): v for a, v in (("image_token_id", 1), ("video_token_id", 2))
                               if isinstance(getattr(config, a, None), int)}
        self.completions_path = os.path.join(self.args.output_dir, "completions.jsonl")
        self._batch_sampler = batch_sampler
        if batch_sampler is not None:
            from ..samplers.duration import BatchStats

            # Seed 000's per-interval batch-size lines (prompts per generation batch, rank 0).
            self.batch_stats = BatchStats(interval=max(1, int(self.args.logging_steps)))
            self.add_callback(_SamplerEpochs(self))
            self._widen_logs(batch_sampler)

    def _install_reference(self, reference: Any, beta: float) -> None:
        """Do for a copied reference what TRL's ``__init__`` does for one it loads itself."""
        from trl.models import prepare_deepspeed, prepare_fsdp
        from trl.trainer.utils import add_fused_lm_head, disable_dropout_in_model

        self.beta = beta
        if self.args.disable_dropout:
            disable_dropout_in_model(reference)
        add_fused_lm_head(reference, temperature=self.temperature)
        if self.is_deepspeed_enabled:
            reference = prepare_deepspeed(reference, self.accelerator)
        elif self.is_fsdp_enabled:
            reference = prepare_fsdp(reference, self.accelerator)
        else:
            reference = self.accelerator.prepare_model(reference, evaluation_mode=True)
        self.ref_model = reference

    def _suppress_placeholders(self) -> None:
        """Never sample an image or video placeholder: it would have no features to fill it.

        TRL suppresses only ``image_token_id``; the video placeholder is added to both the
        generation config and the kwargs TRL re-applies when unwrapping the model.
        """
        config = self.model.config
        ids = {getattr(config, a, None) for a in ("image_token_id", "video_token_id")} - {None}
        current = set(self.generation_config.suppress_tokens or [])
        merged = sorted(current | {i for i in ids if isinstance(i, int)})
        self.generation_config.suppress_tokens = merged
        if isinstance(getattr(self, "generation_kwargs", None), dict):
            self.generation_kwargs["suppress_tokens"] = merged

    def create_optimizer(self, model: Any = None) -> Any:
        """The backend's per-part parameter groups (``mm_projector_lr``, ``head_lr``...), as in SFT."""
        if self.optimizer is None and self._param_groups_fn is not None:
            opt_model = self.model if model is None else model
            groups = self._param_groups_fn(opt_model)
            if not groups:
                raise RuntimeError("no trainable parameters: every learning rate is 0 or everything is frozen")
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            optimizer_kwargs.pop("lr", None)  # each group carries its own
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer
        return super().create_optimizer(model)

    def _widen_logs(self, sampler: Any) -> None:
        """TRL keeps the last ``generation_batch_size`` completions for its logs; a budget sampler's
        generation batch can be larger, so keep as many rows as its largest batch makes (all ranks)."""
        import collections

        batches = getattr(sampler, "batches", None)
        if not batches:
            return
        rows = max(len(b) for b in batches) * self.num_generations * self.accelerator.num_processes
        if rows <= self.args.generation_batch_size:
            return
        for key, value in list(self._logs.items()):
            if isinstance(value, collections.defaultdict):
                self._logs[key] = collections.defaultdict(lambda n=rows: collections.deque(maxlen=n),
                                                          {k: collections.deque(v, maxlen=rows) for k, v in value.items()})
            elif isinstance(value, collections.deque):
                self._logs[key] = collections.deque(value, maxlen=rows)

    def get_train_dataloader(self) -> Any:
        """With a vtg batch sampler: its batches as TRL's generation batches (see :class:`GenerationBatches`).

        The sampler is already sharded across ranks (each its own prompts, the same count at every
        step), so accelerate does not split it again; rows are plain dicts, nothing to move to a device.
        """
        if self._batch_sampler is None:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        batches = GenerationBatches(self._batch_sampler, self.num_generations,
                                    self.num_iterations * self.args.steps_per_generation, stats=self.batch_stats)
        return DataLoader(self.train_dataset, batch_sampler=batches, collate_fn=self.data_collator, num_workers=0)

    # ---- encoding -------------------------------------------------------------------------

    def encode_rows(self, inputs: Sequence[dict[str, Any]]) -> list[EncodedPrompt]:
        """Encode each distinct prompt of ``inputs`` once; repeated rows share the object."""
        cache: dict[str, EncodedPrompt] = {}
        rows = []
        for row in inputs:
            key = row_key(row)
            enc = cache.get(key)
            if enc is None:
                enc = self._encode_prompt(row)
                if self._max_prompt_length is not None and len(enc.prompt_ids) > self._max_prompt_length:
                    raise DataError(
                        f"sample {key!r}: the prompt is {len(enc.prompt_ids)} tokens with its video, over "
                        f"rl.max_prompt_length={self._max_prompt_length}. A video prompt is not truncated "
                        "(that would cut video tokens); sample fewer frames (video.max_frames / video.fps), "
                        "lower video.resolution / video.max_pixels, or raise rl.max_prompt_length."
                    )
                cache[key] = enc
            rows.append(enc)
        return rows

    @contextlib.contextmanager
    def _scoring(self, rows: Sequence[EncodedPrompt] | None) -> Iterator[None]:
        previous, self._active_rows = self._active_rows, rows
        try:
            yield
        finally:
            self._active_rows = previous

    # ---- TRL overrides --------------------------------------------------------------------

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        rows = self.encode_rows(inputs)
        self._pending_prompts = rows
        try:
            with self._scoring(rows):
                output = super()._generate_and_score_completions(inputs)
        finally:
            self._pending_prompts = None
        if output["prompt_ids"].size(0) != len(rows):
            raise RuntimeError(f"TRL returned {output['prompt_ids'].size(0)} rows for {len(rows)} prompts")
        output[VIDEO_KEY] = rows
        if self.model.training:
            self._record_completions(rows)
        return output

    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict[str, Any]]:
        rows = self._pending_prompts
        if rows is None:
            raise RuntimeError("VideoGRPOTrainer._tokenize_prompts called outside a generation batch")
        if len(rows) != len(prompts):
            raise RuntimeError(f"{len(prompts)} prompts but {len(rows)} encoded video prompts")
        fields: dict[str, Any] = self._concat_visual(rows, device=None)
        if self._uses_token_types:
            # A list of lists: TRL left-pads it exactly like the prompt ids.
            fields["mm_token_type_ids"] = [list(_token_types(r)) for r in rows]
        # images=None: the video travels in ``fields``; TRL's image handling stays off.
        return [list(r.prompt_ids) for r in rows], None, fields

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with self._scoring(inputs.get(VIDEO_KEY)):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                           batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                           **image_kwargs):
        rows = self._active_rows
        if rows is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **image_kwargs)
        if any(v is not None for v in image_kwargs.values()):
            raise ValueError("VideoGRPOTrainer: image inputs next to video prompts are not supported")
        if len(rows) != input_ids.size(0):
            raise RuntimeError(f"{input_ids.size(0)} sequences to score but {len(rows)} video prompts")
        batch_size = batch_size or input_ids.size(0)
        prompt_width = input_ids.size(1) - logits_to_keep
        logps, entropies, aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids = input_ids[start:end]
            bound = _WithVisualInputs(model, self.visual_inputs(rows[start:end], ids, prompt_width))
            lp, ent, aux = super()._get_per_token_logps_and_entropies(
                bound, ids, attention_mask[start:end], logits_to_keep, batch_size=end - start,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss)
            logps.append(lp)
            if ent is not None:
                entropies.append(ent)
            if aux is not None:
                aux_losses.append(aux)
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux_losses).mean() if compute_aux_loss else None)

    def visual_inputs(self, rows: Sequence[EncodedPrompt], input_ids: torch.Tensor,
                      prompt_width: int) -> dict[str, torch.Tensor]:
        """The model's visual keyword arguments for ``rows`` (one per line of ``input_ids``).

        Raises if a row's placeholder count differs from its features: the silent failure mode
        this class exists to prevent (a repeated, shuffled or padded row paired with another
        row's video, or a truncated prompt).
        """
        device = input_ids.device
        for i, row in enumerate(rows):
            if row.placeholder_id is None:
                continue
            found = int((input_ids[i, :prompt_width] == row.placeholder_id).sum())
            in_completion = int((input_ids[i, prompt_width:] == row.placeholder_id).sum())
            if found != row.num_placeholders or in_completion:
                raise RuntimeError(
                    f"video prompt {row.key!r}: {found} placeholder tokens in the prompt and {in_completion} in "
                    f"the completion, but its video has {row.num_placeholders} features"
                )
        extra = self._concat_visual(rows, device=device)
        if self._uses_token_types:
            # Rebuilt from the ids actually scored, so they follow TRL's padding whatever its side.
            types = torch.zeros_like(input_ids)
            prompt = input_ids[:, :prompt_width]
            for token_id, value in self._token_type_of.items():
                types[:, :prompt_width][prompt == token_id] = value
            extra["mm_token_type_ids"] = types
        return extra

    def _concat_visual(self, rows: Sequence[EncodedPrompt], device: Any) -> dict[str, torch.Tensor]:
        """Each visual key concatenated over the rows that have it, in row order (the models take
        all videos' patches as one flat sequence, ``video_grid_thw`` saying whose is whose).
        Pixel tensors follow the model's dtype; grids and ``second_per_grid_ts`` keep theirs."""
        dtype = self.model.get_input_embeddings().weight.dtype
        keys = list(dict.fromkeys(k for r in rows for k in r.visual))
        out = {}
        for key in keys:
            value = torch.cat([r.visual[key] for r in rows if key in r.visual])
            if key.startswith("pixel_values") and value.is_floating_point():
                value = value.to(dtype)
            out[key] = value if device is None else value.to(device)
        return out

    # ---- completion log -------------------------------------------------------------------

    def _record_completions(self, rows: Sequence[EncodedPrompt]) -> None:
        keys = gather_object([r.key for r in rows])
        # TRL keeps the last generation_batch_size rows; a budget sampler's batch may hold more.
        keys = keys[-len(self._logs["completion"]):] if len(keys) > len(self._logs["completion"]) else keys
        n = len(keys)
        completions = list(self._logs["completion"])[-n:]
        advantages = list(self._logs["advantages"])[-n:]
        rewards = {name: list(self._logs["rewards"][name])[-n:] for name in self.reward_func_names}
        weights = self.reward_weights.tolist()
        for i, key in enumerate(keys):
            per_reward = {name: _clean(rewards[name][i]) for name in self.reward_func_names}
            total = sum(w * v for w, v in zip(weights, per_reward.values(), strict=True) if v is not None)
            self._completion_records.append({
                "sample_id": key,
                "completion": _completion_text(completions[i]) if i < len(completions) else None,
                "rewards": per_reward,
                "reward": total,
                "advantage": _clean(advantages[i]) if i < len(advantages) else None,
            })
        # Bound memory when logging is rare: keep the most recent rows only.
        del self._completion_records[:-max(self._completion_log_max, 1) * 4]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)
        if not self.model.training or not self._completion_records or self._completion_log_every <= 0:
            return
        # The Trainer's closing summary (train_runtime...) also flushes, so short runs log too.
        if self.state.global_step % self._completion_log_every != 0 and "train_runtime" not in logs:
            return
        records, self._completion_records = self._completion_records[-self._completion_log_max:], []
        if not self.accelerator.is_main_process:
            return
        os.makedirs(os.path.dirname(self.completions_path) or ".", exist_ok=True)
        with open(self.completions_path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps({"step": self.state.global_step, **rec}, ensure_ascii=False) + "\n")


class GenerationBatches:
    """A vtg batch sampler as TRL's GRPO data order, for ``DataLoader(batch_sampler=...)``.

    TRL's dataloader yields one *generation batch* per rank at a time: each prompt index
    ``num_generations`` times in a row (its group), the whole batch ``repeat`` times
    (``num_iterations x steps_per_generation``: TRL generates on the first and reuses the stored
    completions for the others). Here each generation batch is one batch of the vtg sampler, so
    its prompts are the ones the sampler packed together (by duration, by visual tokens...).
    """

    def __init__(self, sampler: Any, num_generations: int, repeat: int, stats: Any = None):
        self.sampler = sampler
        self.num_generations = int(num_generations)
        self.repeat = max(1, int(repeat))
        self.stats = stats

    def __len__(self) -> int:
        return len(self.sampler) * self.repeat

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            if self.stats is not None:
                self.stats.add(len(batch))
            group = [i for i in batch for _ in range(self.num_generations)]
            for _ in range(self.repeat):
                yield list(group)


class _SamplerEpochs(TrainerCallback):
    """Reshuffles the vtg sampler each epoch; logs the batch-size statistics from rank 0."""

    def __init__(self, trainer: VideoGRPOTrainer):
        self.trainer = trainer

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if hasattr(self.trainer._batch_sampler, "set_epoch"):
            self.trainer._batch_sampler.set_epoch(int(state.epoch or 0))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.trainer.batch_stats.report(state.global_step)
        else:
            self.trainer.batch_stats.sizes = []


def _check_trl_version() -> None:
    import trl

    line = ".".join(trl.__version__.split(".")[:2])
    if line not in TRL_CHECKED:
        warnings.warn(f"VideoGRPOTrainer overrides private GRPOTrainer methods and was checked against trl "
                      f"{', '.join(TRL_CHECKED)}; this is trl {trl.__version__}. Run tests/test_grpo.py to "
                      "confirm video inputs still reach every forward pass.", stacklevel=3)


def _token_types(row: EncodedPrompt) -> tuple[int, ...]:
    if row.token_types is not None:
        return row.token_types
    return tuple(2 if t == row.placeholder_id else 0 for t in row.prompt_ids)


def _completion_text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        parts = []
        for message in completion:
            content = message.get("content") if isinstance(message, dict) else message
            if isinstance(content, list):
                content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
            parts.append(str(content or ""))
        return "".join(parts)
    return str(completion)


def _clean(value: Any) -> float | None:
    value = float(value)
    return None if value != value else value  # NaN (reward not applicable) -> null
