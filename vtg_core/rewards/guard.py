"""Every reward call checked: errors, time limit, one finite score (or None) per completion.

:func:`guard_reward` wraps a reward callable (``build_rewards`` wraps every configured reward) so a
failing reward cannot silently bend a GRPO run:

- **It raises.** The batch is scored again one completion at a time to find the sample(s) that
  fail. ``on_error="raise"`` (default) stops with :class:`~vtg_core.errors.RewardError` naming the
  reward, the sample id and the original traceback. ``on_error="zero"`` scores those completions
  0.0, ``on_error="drop"`` returns ``None`` for them (TRL leaves a ``None`` out of the weighted sum;
  a completion with no score at all gets no advantage); the others keep their real scores. Each
  such failure is counted by reward and cause, logged, and reported to TRL's logs as
  ``rewards/<name>/errors`` when the trainer passes ``log_metric``.
- **It takes too long.** With ``timeout`` (seconds) the call runs in a worker thread; past the
  limit it counts as an error with cause ``timeout`` (then the policy above applies, batch-wide:
  no per-sample retry of a reward that already took too long). Python cannot stop a thread, so a
  reward stuck for good keeps its thread; the run itself goes on or stops, it does not hang.
- **It returns garbage.** Not a list, the wrong number of values, a value that is neither a
  number nor ``None``, or NaN / infinity: always an error (whatever ``on_error`` says), since a
  reward that is wrong in that way is a bug, not a bad sample.

Options ``on_error`` and ``timeout`` can be given on any ``rewards:`` entry
(``{name: temporal_iou, on_error: zero, timeout: 30}``); they are the guard's, not the reward's.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError, RewardError

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "zero", "drop")
GUARD_OPTIONS = ("on_error", "timeout")
# Keyword arguments TRL passes that are not per-completion columns.
_NOT_COLUMNS = ("trainer_state", "log_extra", "log_metric", "completion_ids")


class _Timeout(Exception):
    pass


def check_guard_options(name: str, on_error: Any, timeout: Any) -> tuple[str, float | None]:
    if on_error not in ON_ERROR:
        raise ConfigError(f"reward {name!r}: on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) \
                or timeout <= 0:
            raise ConfigError(f"reward {name!r}: timeout must be a positive number of seconds, got {timeout!r}")
        timeout = float(timeout)
    return on_error, timeout


def _call_with_timeout(fn: Callable[..., Any], timeout: float | None, kwargs: dict[str, Any]) -> Any:
    if timeout is None:
        return fn(**kwargs)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(**kwargs)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="vtg-reward", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Timeout(f"took more than {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class GuardedReward:
    """A reward callable with the checks of the module docstring; ``errors`` counts ``(cause) -> n``."""

    def __init__(self, fn: Callable[..., Any], name: str, *, on_error: str = "raise", timeout: float | None = None):
        self.on_error, self.timeout = check_guard_options(name, on_error, timeout)
        self.fn = fn
        self.__name__ = name
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.__name__

    def __getattr__(self, attr: str) -> Any:  # e.g. a composite's .components
        if attr == "fn":
            raise AttributeError(attr)
        return getattr(self.fn, attr)

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float | None]:
        n = len(completions)
        ids = _sample_ids(kwargs, n)
        call = {"prompts": prompts, "completions": completions, **kwargs}
        try:
            values = _call_with_timeout(self.fn, self.timeout, call)
        except _Timeout as exc:
            return self._failed(list(range(n)), ids, "timeout", f"reward {self.name!r} {exc} on a batch of {n} "
                                f"completions (samples {_show(ids)})", None, kwargs)
        except Exception:
            return self._one_by_one(prompts, completions, kwargs, ids)
        return self._check(values, n, ids)

    def _check(self, values: Any, n: int, ids: list[str | None]) -> list[float | None]:
        if isinstance(values, str | bytes | dict) or not hasattr(values, "__len__"):
            raise RewardError(f"reward {self.name!r} returned {type(values).__name__}, not a list of {n} scores",
                              reward=self.name)
        values = list(values)
        if len(values) != n:
            raise RewardError(f"reward {self.name!r} returned {len(values)} values for {n} completions "
                              f"(samples {_show(ids)}): one score (or None) per completion is expected",
                              reward=self.name, sample_id=ids[0] if ids else None)
        out: list[float | None] = []
        for i, value in enumerate(values):
            if value is None:
                out.append(None)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__float__"):
                raise RewardError(f"reward {self.name!r} returned {value!r} ({type(value).__name__}) for sample "
                                  f"{ids[i]}: expected a number or None", reward=self.name, sample_id=ids[i])
            number = float(value)
            if not math.isfinite(number):
                raise RewardError(f"reward {self.name!r} returned {number} for sample {ids[i]} (completion {i}): "
                                  f"a reward must be finite; return None where it does not apply",
                                  reward=self.name, sample_id=ids[i])
            out.append(number)
        return out

    def _one_by_one(self, prompts: Any, completions: Sequence[Any], kwargs: dict[str, Any],
                    ids: list[str | None]) -> list[float | None]:
        n = len(completions)
        out: list[float | None] = []
        for i in range(n):
            part = {k: (v[i:i + 1] if _is_column(k, v, n) else v) for k, v in kwargs.items()}
            sub_prompts = prompts[i:i + 1] if isinstance(prompts, list | tuple) and len(prompts) == n else prompts
            try:
                value = _call_with_timeout(self.fn, self.timeout,
                                           {"prompts": sub_prompts, "completions": completions[i:i + 1], **part})
            except _Timeout as exc:
                out.extend(self._failed([i], ids, "timeout", f"reward {self.name!r} {exc} on sample {ids[i]}",
                                        None, kwargs))
                continue
            except Exception as exc:
                tb = traceback.format_exc()
                out.extend(self._failed([i], ids, type(exc).__name__,
                                        f"reward {self.name!r} raised {type(exc).__name__}: {exc} on sample {ids[i]} "
                                        f"(completion {i})", tb, kwargs))
                continue
            out.extend(self._check(value, 1, [ids[i]]))
        return out

    def _failed(self, rows: list[int], ids: list[str | None], cause: str, message: str, tb: str | None,
                kwargs: dict[str, Any]) -> list[float | None]:
        sample = ids[rows[0]] if rows else None
        if self.on_error == "raise":
            hint = (f"\nSet on_error: zero or on_error: drop on this rewards entry to score such completions 0 or "
                    f"leave them out{'; timeout: SECONDS sets the limit' if cause == 'timeout' else ''}.")
            raise RewardError(message + (f"\n{tb.rstrip()}" if tb else "") + hint, reward=self.name,
                              sample_id=sample)
        with self._lock:
            self.errors[cause] += len(rows)
            total = sum(self.errors.values())
        log.warning("%s; on_error=%s: %s (%d so far for %r: %s)", message, self.on_error,
                    "scored 0" if self.on_error == "zero" else "left out", total, self.name,
                    ", ".join(f"{k} {v}" for k, v in self.errors.items()))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            try:
                log_metric(f"rewards/{self.name}/errors", float(total))
            except Exception:  # logging must never be what stops a run
                log.debug("log_metric failed", exc_info=True)
        return [0.0 if self.on_error == "zero" else None for _ in rows]


def _is_column(key: str, value: Any, n: int) -> bool:
    return key not in _NOT_COLUMNS and isinstance(value, list | tuple) and len(value) == n


def _sample_ids(kwargs: dict[str, Any], n: int) -> list[str | None]:
    ids = kwargs.get("sample_id")
    if isinstance(ids, list | tuple) and len(ids) == n:
        return [str(i) for i in ids]
    return [None] * n


def _show(ids: list[str | None], limit: int = 8) -> str:
    known = [i for i in ids if i is not None]
    if not known:
        return "unknown"
    unique = list(dict.fromkeys(known))
    return ", ".join(unique[:limit]) + (" ..." if len(unique) > limit else "")


def guard_reward(fn: Callable[..., Any], name: str, *, on_error: str = "raise",
                 timeout: float | None = None) -> GuardedReward:
    """``fn`` wrapped in a :class:`GuardedReward` (an already guarded one is returned as is)."""
    if isinstance(fn, GuardedReward):
        return fn
    return GuardedReward(fn, name, on_error=on_error, timeout=timeout)
