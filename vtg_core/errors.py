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
