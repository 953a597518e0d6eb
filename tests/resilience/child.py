"""Runs ``vtg`` in a subprocess for the resilience tests, with an optional fault planted.

Environment (all optional):

- ``VTG_TEST_SLOW_AFTER=N``: from optimizer step N on, each training step sleeps 0.3 s, so a
  signal sent by the test lands mid-run rather than after the end.
- ``VTG_TEST_DIE_SAVING=N``: the process SIGKILLs itself while saving checkpoint N, after the
  weights and optimizer are written and before the RNG and trainer state are: a kill during a save.
"""

import os
import signal
import sys
import time

import torch

torch.set_num_threads(1)

from vtg_core.train import sft  # noqa: E402

slow_after = int(os.environ.get("VTG_TEST_SLOW_AFTER", "-1"))
die_saving = int(os.environ.get("VTG_TEST_DIE_SAVING", "-1"))

if slow_after >= 0:
    _step = sft.VideoSFTTrainer.training_step

    def training_step(self, *args, **kwargs):
        if self.state.global_step >= slow_after:
            time.sleep(0.3)
        return _step(self, *args, **kwargs)

    sft.VideoSFTTrainer.training_step = training_step

if die_saving >= 0:
    _save_rng = sft.VideoSFTTrainer._save_rng_state

    def _save_rng_state(self, output_dir):
        if self.state.global_step == die_saving:
            os.kill(os.getpid(), signal.SIGKILL)
        return _save_rng(self, output_dir)

    sft.VideoSFTTrainer._save_rng_state = _save_rng_state

from vtg_core.cli.main import cli  # noqa: E402

cli(sys.argv[1:], prog_name="vtg")
