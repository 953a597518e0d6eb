"""Know which samples are in a batch, and leave out the ones whose video cannot be decoded.

:class:`TrackedDataset` wraps the training dataset: each example carries its sample id, and a clip
that fails to decode (:class:`~vtg_core.errors.VideoError`: missing, empty, corrupt, truncated,
unsupported codec, shorter than its annotation, decoding timed out) becomes a *failure record*
instead of an exception. :class:`TrackedCollator` collates the good examples and passes the ids
and failures along under :data:`IDS_KEY` / :data:`FAILED_KEY`; the trainer pops both before the
forward pass (:meth:`VideoFailures.take`).

What happens to a failed clip (``dataset.invalid_policy``):

- ``skip``: the sample is left out of its batch (the batch is smaller; no other sample takes its
  place), counted by reason and logged. Once ``dataset.max_invalid_fraction`` of the samples seen
  so far failed (counted from 20 samples on) the run stops: that many failures means a wrong
  video directory or a broken disk, not a few damaged files.
- ``fail``: the first failure stops the run, naming sample, file and reason.

A batch whose every sample failed becomes an empty batch: no forward pass, no gradient, so that
optimizer step moves nothing (the learning-rate schedule still advances one step).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DataError, VideoError

log = logging.getLogger(__name__)

IDS_KEY = "vtg_sample_ids"
FAILED_KEY = "vtg_failed_samples"
_FAILED = "vtg_failed"
MIN_SEEN = 20


class TrackedDataset:
    """``dataset[i]`` plus the sample's id; a :class:`VideoError` becomes a failure record."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # samples, task... of the wrapped dataset
        if name == "dataset":  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.dataset.samples[index]
        try:
            example = dict(self.dataset[index])
        except VideoError as exc:
            return {_FAILED: (str(sample.id), exc.reason, str(exc))}
        example[IDS_KEY] = str(sample.id)
        return example


class TrackedCollator:
    """Collates the decoded examples; ids and failures ride along as plain lists."""

    def __init__(self, collate: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]):
        self.collate = collate

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        failed = [ex[_FAILED] for ex in examples if _FAILED in ex]
        good = [ex for ex in examples if _FAILED not in ex]
        if not good:  # nothing to train on: an empty batch, which the trainer skips (no forward, no update)
            import torch

            return {"labels": torch.empty((0, 1), dtype=torch.long), IDS_KEY: [], FAILED_KEY: failed}
        tracked = any(IDS_KEY in ex for ex in good)
        if tracked:
            good = [dict(ex) for ex in good]
        ids = [ex.pop(IDS_KEY, None) for ex in good]
        batch = dict(self.collate(good))
        if tracked or failed:  # examples of an untracked dataset (evaluation) pass through unchanged
            batch[IDS_KEY] = ids
            batch[FAILED_KEY] = failed
        return batch


class VideoFailures:
    """Counts decoding failures by reason and applies the policy (see the module docstring)."""

    def __init__(self, policy: str = "skip", max_fraction: float | None = 0.05):
        self.policy = policy
        self.max_fraction = max_fraction
        self.seen = 0
        self.by_reason: Counter[str] = Counter()
        self.samples: list[tuple[str, str]] = []

    def take(self, inputs: dict[str, Any]) -> list[str]:
        """Pop the bookkeeping keys from a batch; count, log, and raise per policy. Returns the ids."""
        ids = list(inputs.pop(IDS_KEY, None) or [])
        failed = list(inputs.pop(FAILED_KEY, None) or [])
        self.seen += len(ids) + len(failed)
        for sample_id, reason, message in failed:
            self.by_reason[reason] += 1
            self.samples.append((sample_id, reason))
            if self.policy == "fail":
                raise DataError(f"{message} (dataset.invalid_policy=fail; use skip to leave such samples out)")
            log.warning("left out of its batch (dataset.invalid_policy=skip): %s", message)
        failures = sum(self.by_reason.values())
        if (failed and self.max_fraction is not None and self.seen >= MIN_SEEN
                and failures / self.seen > self.max_fraction):
            raise DataError(
                f"{failures} of {self.seen} samples so far failed to decode ({self.summary()}), above "
                f"dataset.max_invalid_fraction={self.max_fraction:g}: check dataset.video_dir and the files "
                f"(`vtg validate FILE --check-videos` lists each one)")
        return ids

    def summary(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in self.by_reason.most_common()) or "none"
