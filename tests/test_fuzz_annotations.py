"""Thousands of malformed annotation rows through every registered task's loader (hypothesis).

The tasks are taken from the plugin registry, so a task plugin installed later is fuzzed too. For
each: no exception, no hang (20 s per file), every row either a sample or rejected with its line
number and a reason. Seed rows come from the task's ``make_demo_data`` where it has one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "resilience"))
from fuzz_rows import check_load, file_format, malformed_lines, seed_rows  # noqa: E402

from vtg_core.plugins import get_registry  # noqa: E402

TASKS = sorted(get_registry().all("task"))
MIN_ROWS = 1000  # per task


@pytest.mark.parametrize("name", TASKS)
def test_every_task_loader_survives_malformed_rows(name, tmp_path_factory):
    task = get_registry().get("task", name).load()()
    root = tmp_path_factory.mktemp(f"fuzz-{name}")
    seeds = seed_rows(task, name, root)
    fmt = file_format(task, root / "probe.jsonl", seeds, str(root))
    totals = {"rows": 0, "accepted": 0, "rejected": 0, "file_errors": 0, "files": 0}

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(lines=st.lists(malformed_lines(seeds), min_size=20, max_size=60))
    def fuzz(lines):
        counts = check_load(task, root / f"rows.{'jsonl' if fmt == 'jsonl' else 'json'}", lines,
                            video_dir=str(root), fmt=fmt)
        totals["files"] += 1
        for key in ("rows", "accepted", "rejected", "file_errors"):
            totals[key] += counts[key]

    fuzz()
    assert totals["rows"] >= MIN_ROWS, totals
    assert totals["rejected"] > totals["rows"] // 2, totals  # the generator really makes bad rows
