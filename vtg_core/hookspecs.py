"""Every hook a vtg plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`vtg_core.hookimpl` whose
names match the specifications below. It is found through the ``vtg`` entry-point group::

    # pyproject.toml of vtg-task-something
    [project.entry-points.vtg]
    task_something = "vtg_task_something.plugin"

Hooks are called with keyword arguments, and an implementation may accept a subset of a hook's
arguments, so arguments can be added to a hook later but are never removed. Each ``register``
hook returns a list of records (:mod:`vtg_core.records`); the core collects the lists of every
plugin and refuses two components of the same kind and name, naming both distributions.
"""

from __future__ import annotations

from typing import Any

import pluggy

from .records import BackendSpec, RewardSpec, SamplerSpec, TaskSpec

hookspec = pluggy.HookspecMarker("vtg")


@hookspec
def vtg_register_tasks() -> list[TaskSpec]:
    """Register tasks, the things ``vtg train --task NAME`` accepts.

    Contract: return a list of :class:`~vtg_core.records.TaskSpec`. Import nothing heavy here:
    put the task class behind a ``"module:attr"`` factory string.

    Arguments: none.

    Returns: ``list[TaskSpec]`` (may be empty).

    Example::

        @vtg_core.hookimpl
        def vtg_register_tasks():
            return [TaskSpec(name="my_task", description="One line for `vtg tasks`.",
                             factory="my_plugin.task:MyTask",
                             default_rewards=[{"name": "temporal_iou", "weight": 1.0}])]
    """


@hookspec
def vtg_register_rewards() -> list[RewardSpec]:
    """Register rewards, the names a config's ``rewards:`` list accepts.

    Contract: return a list of :class:`~vtg_core.records.RewardSpec` whose factory, called with
    the reward's options from config, returns a callable with TRL's reward signature
    ``fn(prompts, completions, **columns) -> list[float | None]``.

    Arguments: none.

    Returns: ``list[RewardSpec]`` (may be empty).

    Example::

        @vtg_core.hookimpl
        def vtg_register_rewards():
            return [RewardSpec(name="length_penalty", description="Penalise long answers.",
                               factory="my_plugin.rewards:length_penalty", options={"max_chars": 200})]
    """


@hookspec
def vtg_register_backends() -> list[BackendSpec]:
    """Register model backends, the names ``--backend`` / ``model.backend`` accept.

    Contract: return a list of :class:`~vtg_core.records.BackendSpec`. The factory returns a
    backend object that loads model and processor, applies LoRA, saves complete checkpoints,
    merges / exports and generates. ``check`` says cheaply whether it can run on this machine.

    Arguments: none.

    Returns: ``list[BackendSpec]`` (may be empty).

    Example::

        @vtg_core.hookimpl
        def vtg_register_backends():
            return [BackendSpec(name="my_backend", description="My fast loader.",
                                factory="my_plugin.backend:MyBackend",
                                check="my_plugin.backend:is_usable")]
    """


@hookspec
def vtg_register_samplers() -> list[SamplerSpec]:
    """Register batch samplers, the names ``dataloader.sampler`` accepts.

    Contract: return a list of :class:`~vtg_core.records.SamplerSpec` whose factory builds an
    iterable of index batches from the samples, config, rank, world size and seed.

    Arguments: none.

    Returns: ``list[SamplerSpec]`` (may be empty).

    Example::

        @vtg_core.hookimpl
        def vtg_register_samplers():
            return [SamplerSpec(name="curriculum", description="Easy samples first.",
                                factory="my_plugin.sampler:CurriculumSampler")]
    """


@hookspec
def vtg_register_commands(cli: Any) -> None:
    """Add sub-commands to the ``vtg`` command line.

    Contract: add ``click`` commands or groups to ``cli``; import heavy modules inside the
    command's body, not at module level, so ``vtg --help`` stays fast.

    Arguments: ``cli``: the root :class:`click.Group` of ``vtg``.

    Returns: nothing.

    Example::

        @vtg_core.hookimpl
        def vtg_register_commands(cli):
            @cli.group(name="robot-vqa")
            def robot_vqa():
                "Robot progress and preference VQA."
    """
