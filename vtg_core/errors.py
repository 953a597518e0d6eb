"""Exceptions a user can cause, each saying what was wrong, where, and what to do.

Every error vtg raises on purpose derives from :class:`VtgError`, so the command line can print
it as one clean message instead of a traceback.
"""

from __future__ import annotations


class VtgError(Exception):
    """Base of every error vtg raises on purpose (bad config, bad data, bad plugin)."""


class ConfigError(VtgError):
    """A configuration file or override is wrong: unknown key, wrong type, bad value."""


class PluginError(VtgError):
    """A plugin failed to load, registered something invalid, or clashes with another."""


class DataError(VtgError):
    """An annotation file or sample is invalid."""


class VideoError(VtgError):
    """A video could not be opened or decoded.

    ``path`` and ``sample_id`` say which file and which sample; ``reason`` is a short machine
    readable tag (``missing``, ``empty``, ``corrupt``, ``too_short``, ``unsupported``) used to
    count skipped samples by cause.
    """

    def __init__(self, message: str, *, path: str | None = None, sample_id: str | None = None,
                 reason: str = "corrupt"):
        super().__init__(message)
        self.path = path
        self.sample_id = sample_id
        self.reason = reason


class UnknownNameError(VtgError):
    """A task, reward, backend or sampler name that no loaded plugin registers."""


class TrainingInterrupted(VtgError):
    """A run stopped on SIGTERM / SIGINT after saving a checkpoint; the message says how to resume.

    ``exit_code`` is the shell convention for a signal (128 + its number), which the command line
    exits with.
    """

    def __init__(self, message: str, *, signum: int, checkpoint: str | None = None):
        super().__init__(message)
        self.signum = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + int(signum)


class NonFiniteError(VtgError):
    """A training step had a non-finite loss or gradient; it was not applied.

    ``step``, ``sample_ids`` (the batch) and ``checkpoint`` (the last complete one, or None).
    """

    def __init__(self, message: str, *, step: int, sample_ids: list[str], checkpoint: str | None):
        super().__init__(message)
        self.step = step
        self.sample_ids = sample_ids
        self.checkpoint = checkpoint


class RewardError(VtgError):
    """A reward function raised, timed out, or returned something that is not one finite score
    per completion. ``reward`` and ``sample_id`` say which."""

    def __init__(self, message: str, *, reward: str, sample_id: str | None = None):
        super().__init__(message)
        self.reward = reward
        self.sample_id = sample_id
