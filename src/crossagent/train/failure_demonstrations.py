"""Demonstrations of the groups that failed: the expert's solution of every trial whose group solved nothing.

Why: a group whose every episode fails has returns all equal and gives GRPO no signal however long it runs, and
the cold start's own examples (train/demonstrations.py) are the 60 episodes it was trained on, not the states
where the policy fails now. As ReLIFT (Ma et al. 2025, "Learning what reinforcement learning can't") does for the
questions no rollout solves, the expert solves each such trial (same start, same dice, the rollouts' step cap),
its steps are labelled in the policy's own output format and prompt (data.builders; the mixed format's verified
levels), and the examples join a pool that grows through the run. Each optimizer step adds the SFT reply loss of
examples drawn from the pool. The pool is kept in the run folder, one data set per iteration, so a resumed run
trains on the pool an uninterrupted one would have.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_from_disk

from crossagent.agents.expert import ExpertAgent
from crossagent.data.builders import BuildConfig, build_dataset
from crossagent.data.level_verification import verify_levels
from crossagent.data.recording import record_episode, recording_env
from crossagent.train.demonstrations import Demonstrations
from crossagent.train.rollouts import EpisodeRollout, EpisodeSpec, RolloutSettings

POOL_DIR = "failure_demonstrations"  # in the run folder: one data set per iteration
FAILURE_STREAM = 3  # apart from the draws of tasks (none), prefixes (1) and the SFT data set's examples (2)


def failed_groups(episodes: Sequence[EpisodeRollout]) -> list[EpisodeSpec]:
    """One spec (its task and trial) of every group none of whose episodes succeeded, in group order."""
    outcomes: dict[int, list[bool]] = {}
    first: dict[int, EpisodeSpec] = {}
    for episode in episodes:
        outcomes.setdefault(episode.spec.group, []).append(episode.result.success)
        first.setdefault(episode.spec.group, episode.spec)
    return [first[group] for group in sorted(outcomes) if not any(outcomes[group])]


def expert_examples(specs: Sequence[EpisodeSpec], settings: RolloutSettings, suite_file: str | None) -> Dataset:
    """The labelled steps of the expert's solutions of the specs' trials (those it solves within the rollouts' step
    cap), as the policy is prompted (settings' format, history, observation and prompt style)."""
    expert = ExpertAgent()
    env = recording_env(expert, settings.image_size)
    episodes = []
    for spec in specs:
        task = replace(spec.task, budget=min(spec.task.budget, settings.max_episode_steps))
        record = record_episode(env, expert, task, spec.trial)
        if record.success:
            episodes.append(record.steps)
    config = BuildConfig(history=settings.history_length, use_image=settings.use_image, use_text=settings.use_text,
                         prompt_style=settings.prompt_style, requery_every=settings.requery_every)
    levels = (verify_levels(episodes, settings.image_size, config.verify_budget, suite_file)[0]
              if episodes and settings.output_format == "mixed" else None)
    dataset, _ = build_dataset(episodes, {settings.output_format: 1.0}, config, settings.image_size, levels=levels)
    return dataset


class FailureDemonstrations:
    """The pool of the run's expert examples of failed groups, and the reply loss of random batches of it."""

    def __init__(self, output_dir: str | Path, processor, per_step: int, iterations_done: int, write: bool):
        """Loads the pool of iterations 1..iterations_done from the run folder (a resumed run); `write`: this
        process saves what `add` gets (the main process; the others compute the same examples)."""
        self.folder = Path(output_dir) / POOL_DIR
        self.processor, self.per_step, self.write = processor, per_step, write
        parts = [load_from_disk(str(path)) for path in sorted(self.folder.glob("iteration_*"))
                 if int(path.name.removeprefix("iteration_")) <= iterations_done]
        self.demonstrations: Demonstrations | None = None
        self._grow(parts)

    @property
    def size(self) -> int:
        return len(self.demonstrations.dataset) if self.demonstrations else 0

    def add(self, iteration: int, examples: Dataset) -> None:
        """An iteration without examples writes none (datasets cannot load an empty data set back), and drops what
        an earlier, interrupted run may have left for that iteration."""
        folder = self.folder / f"iteration_{iteration:04d}"
        if self.write:
            shutil.rmtree(folder, ignore_errors=True)
            if len(examples):
                examples.save_to_disk(str(folder))
        if len(examples):
            self._grow([examples])

    def _grow(self, parts: list[Dataset]) -> None:
        if not parts:
            return
        pool = concatenate_datasets(([self.demonstrations.dataset] if self.demonstrations else []) + parts)
        self.demonstrations = Demonstrations(pool, self.processor, self.per_step, FAILURE_STREAM)
