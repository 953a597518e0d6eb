"""The built-in samplers, registered through the same hook a third-party plugin uses.

``trylast`` puts these implementations after installed plugins', so a plugin's records are
collected first; the registry still refuses a plugin that reuses one of these names. Factories are
``"module:attr"`` strings, so listing samplers imports nothing but this module.
"""

from __future__ import annotations

import vtg_core
from vtg_core.records import SamplerSpec


@vtg_core.hookimpl(trylast=True)
def vtg_register_samplers() -> list[SamplerSpec]:
    return [
        SamplerSpec(name="sequential", description="Fixed-size batches in file order (evaluation, debugging).",
                    factory="vtg_core.samplers.basic:build_sequential"),
        SamplerSpec(name="random", description="Fixed-size batches, reshuffled every epoch (seed + epoch).",
                    factory="vtg_core.samplers.basic:build_random"),
        SamplerSpec(name="duration",
                    description="Batches packed to a total video duration (duration_batching.*).",
                    factory="vtg_core.samplers.duration:build_duration"),
        SamplerSpec(name="token_budget",
                    description="Batches packed to a visual-token budget (token_batching.*).",
                    factory="vtg_core.samplers.duration:build_token_budget"),
    ]
