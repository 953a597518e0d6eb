"""Training: SFT (:mod:`.sft`) and GRPO (:mod:`.grpo`) on top of transformers / TRL.

Importing this package imports nothing heavy; the submodules import torch and must be imported
explicitly (``from vtg_core.train.sft import run_sft``).
"""
