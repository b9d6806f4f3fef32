"""A GRPO run's logs: the metrics of an iteration, its CSV rows, TensorBoard scalars, the console line, the curves.

    grpo_config.json   the config of the run
    grpo_log.csv       one row per iteration (COLUMNS); rows after the resumed checkpoint are dropped on resume
    level_shares.csv   per iteration and category, the share of env steps that executed / contained each level
    groups.csv         one row per group rolled out: its task, successes, mean return, whether its returns
                       differed (informative) and whether the update trained on it; the curriculum's state
    tensorboard/       the same values as scalars grpo/<name>
    grpo_curves.png    the learning curves (plot_learning_curves)
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from crossagent.bench.metrics import LEVEL_KINDS, level_shares  # noqa: E402
from crossagent.train.curriculum import informative_groups  # noqa: E402
from crossagent.train.rollouts import EpisodeRollout  # noqa: E402

if TYPE_CHECKING:
    from crossagent.train.grpo import GRPOConfig

CONFIG_JSON = "grpo_config.json"
LOG_CSV = "grpo_log.csv"
LEVEL_CSV = "level_shares.csv"  # per category: bench.level_shares draws it
LEVEL_SHARES_PNG = "level_shares.png"
LEVEL_COLUMNS = ("iteration", "category", "kind", "level", "share")
GROUPS_CSV = "groups.csv"
GROUP_COLUMNS = ("iteration", "group", "task", "episodes", "successes", "mean_return", "informative", "trained",
                 "expert_prefix_steps")
CURVES_PNG = "grpo_curves.png"
TENSORBOARD_DIR = "tensorboard"


class RunLog:
    """Where an iteration's metrics go. Only the main process writes; elsewhere every method does nothing."""

    def __init__(self, config: GRPOConfig, resumed_iteration: int, is_main_process: bool):
        """Writes the config; drops CSV rows and TensorBoard events logged after the resumed checkpoint."""
        self.output = Path(config.output_dir)
        self.updates = config.updates
        self.writer = None
        if not is_main_process:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        (self.output / CONFIG_JSON).write_text(json.dumps(asdict(config), indent=1))
        truncate_csv(self.output / LOG_CSV, resumed_iteration)
        truncate_csv(self.output / LEVEL_CSV, resumed_iteration, LEVEL_COLUMNS)
        truncate_csv(self.output / GROUPS_CSV, resumed_iteration, GROUP_COLUMNS)
        self.writer = SummaryWriter(str(self.output / TENSORBOARD_DIR), purge_step=resumed_iteration + 1)

    def write(self, metrics: dict, level_rows: list[dict], group_rows: list[dict]) -> None:
        """One iteration: a row of grpo_log.csv, rows of level_shares.csv and groups.csv, TensorBoard scalars, a
        console line."""
        if self.writer is None:
            return
        iteration = metrics["iteration"]
        append_csv(self.output / LOG_CSV, [metrics])
        append_csv(self.output / LEVEL_CSV, level_rows, LEVEL_COLUMNS)
        append_csv(self.output / GROUPS_CSV, group_rows, GROUP_COLUMNS)
        for name, value in metrics.items():
            if name != "iteration":
                self.writer.add_scalar(f"grpo/{name}", value, iteration)
        self.writer.flush()
        print(f"iteration {iteration}/{self.updates}: return {metrics['mean_return']:.3f} "
              f"success {metrics['success_rate']:.2f} loss {metrics['loss']:.4f} kl {metrics['kl']:.4f} "
              f"unparseable {metrics['invalid_reply_rate']:.2f} "
              f"({metrics['env_steps_per_second']:.1f} env steps/s, "
              f"{metrics['generated_tokens_per_second']:.0f} tokens/s)", flush=True)

    def plot(self) -> None:
        if self.writer is not None and (self.output / LOG_CSV).exists():
            plot_learning_curves(self.output / LOG_CSV, self.output / CURVES_PNG)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


COLUMNS = ("iteration", "episodes", "turns", "env_steps", "mean_return", "success_rate", "mean_episode_steps",
           "invalid_reply_rate", "zero_advantage_groups", "trained_groups", "trained_turns", "step_signal_turns",
           "loss", "policy_loss", "kl", "entropy", "clip_fraction",
           "grad_norm", "demonstrations", "demonstration_loss", "failure_demonstrations", "failure_demonstration_loss",
           "failure_demonstration_pool",
           *(f"{kind}_{level}" for kind, levels in LEVEL_KINDS.items() for level in levels),
           "steps_per_call", "rollout_seconds", "update_seconds", "env_steps_per_second", "generated_tokens_per_second")


def logged_turns(output: Path, column: str = "turns") -> int | None:
    """The turns rolled out (`turns`) or trained on (`trained_turns`) by every logged iteration of a run, the ones
    before a resume included; None if some iterations were logged without the column (trained_turns is newer)."""
    with (output / LOG_CSV).open() as file:
        values = [row.get(column) for row in csv.DictReader(file)]
    return None if any(value in (None, "") for value in values) else sum(int(value) for value in values)


def rollout_metrics(episodes: list[EpisodeRollout], advantages: torch.Tensor) -> dict:
    steps = sum(episode.result.steps for episode in episodes)
    turns = sum(len(episode.turns) for episode in episodes)
    metrics = {
        "episodes": len(episodes),
        "turns": turns,
        "env_steps": steps,
        "mean_return": float(np.mean([episode.episode_return for episode in episodes])),
        "success_rate": float(np.mean([episode.result.success for episode in episodes])),
        "mean_episode_steps": steps / len(episodes),
        "invalid_reply_rate": sum(turn.unparseable for e in episodes for turn in e.turns) / max(turns, 1),
        "steps_per_call": steps / max(turns, 1),
    }
    groups = {}
    for episode, advantage in zip(episodes, advantages.tolist()):
        groups.setdefault(episode.spec.group, []).append(advantage)
    metrics["zero_advantage_groups"] = float(np.mean([all(a == 0 for a in values) for values in groups.values()]))
    for kind, levels in LEVEL_KINDS.items():
        shares = level_shares([episode.result.extra for episode in episodes], kind)
        metrics.update({f"{kind}_{level}": shares.get(level, 0.0) for level in levels})
    return metrics


def step_signal_share(step_advantages: list[list[float]]) -> float:
    """The share of rolled-out turns whose step-level advantage is not 0 (0 when the run uses none)."""
    values = [value for episode in step_advantages for value in episode]
    return sum(value != 0 for value in values) / max(len(values), 1)


def category_level_shares(episodes: list[EpisodeRollout], iteration: int) -> list[dict]:
    """Per category of the batch, the share of steps that executed / whose reply contained each level."""
    rows = []
    for category in dict.fromkeys(episode.spec.task.category for episode in episodes):
        stats = [episode.result.extra for episode in episodes if episode.spec.task.category == category]
        for kind, levels in LEVEL_KINDS.items():
            shares = level_shares(stats, kind)
            rows.extend({"iteration": iteration, "category": category, "kind": kind, "level": level,
                         "share": shares.get(level, 0.0)} for level in levels)
    return rows


def group_rows(episodes: list[EpisodeRollout], trained: set[int], iteration: int) -> list[dict]:
    """One groups.csv row per group of the iteration, in rollout order."""
    members: dict[int, list[EpisodeRollout]] = {}
    for episode in episodes:
        members.setdefault(episode.spec.group, []).append(episode)
    informative = set(informative_groups(episodes))
    return [{"iteration": iteration, "group": group, "task": group_episodes[0].spec.task.id,
             "episodes": len(group_episodes), "successes": sum(e.result.success for e in group_episodes),
             "mean_return": float(np.mean([e.episode_return for e in group_episodes])),
             "informative": int(group in informative), "trained": int(group in trained),
             "expert_prefix_steps": group_episodes[0].result.extra.get("expert_prefix_steps", 0)}
            for group, group_episodes in sorted(members.items())]


def logged_groups(output: Path, last_iteration: int, complete: bool = False) -> list[dict]:
    """The groups.csv rows of iterations up to `last_iteration` (a run resumed there), in rollout order.
    `complete`: every one of those iterations must be logged (a run from before groups.csv existed is not)."""
    path = output / GROUPS_CSV
    rows = []
    if path.exists():
        with path.open() as file:
            rows = [row for row in csv.DictReader(file) if int(row["iteration"]) <= last_iteration]
    missing = sorted(set(range(1, last_iteration + 1)) - {int(row["iteration"]) for row in rows})
    if complete and missing:
        raise ValueError(f"{path} lacks iterations {missing[0]}..{missing[-1]} of the run resumed at "
                         f"{last_iteration}: the curriculum and the failing kinds cannot be rebuilt; train into "
                         "another output folder")
    return rows


def update_metrics(sums: torch.Tensor, grad_norms: list[float]) -> dict:
    """sums: [turns, loss, policy, kl, entropy, clip fraction] summed over the iteration's turns (all processes).
    An iteration without turns (dynamic sampling found no group whose returns differ) made no update: NaN."""
    if not grad_norms:
        return dict.fromkeys(("loss", "policy_loss", "kl", "entropy", "clip_fraction", "grad_norm"), float("nan"))
    loss, policy, kl, entropy, clip_fraction = (sums[1:] / sums[0]).tolist()
    return {"loss": loss, "policy_loss": policy, "kl": kl, "entropy": entropy, "clip_fraction": clip_fraction,
            "grad_norm": float(np.mean(grad_norms))}


def demonstration_metrics(sums: torch.Tensor, prefix: str = "") -> dict:
    """sums: [examples, loss x examples] of one source's demonstrations in the iteration's steps (all processes);
    `prefix` names the source in the columns. Without examples there is no loss: the log's cell stays empty."""
    examples = int(sums[0].item())
    return {f"{prefix}demonstrations": examples,
            **({f"{prefix}demonstration_loss": sums[1].item() / examples} if examples else {})}


def speed_metrics(timings: list[tuple[float, float, int, int]], update_seconds: float) -> dict:
    """timings: per process (rollout seconds, generation seconds, generated tokens, env steps)."""
    rollout_seconds = max(max(t[0] for t in timings), 1e-9)
    generation_seconds = max(max(t[1] for t in timings), 1e-9)
    return {"rollout_seconds": rollout_seconds, "update_seconds": update_seconds,
            "env_steps_per_second": sum(t[3] for t in timings) / rollout_seconds,
            "generated_tokens_per_second": sum(t[2] for t in timings) / generation_seconds}


def append_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> None:
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)


def truncate_csv(path: Path, last_iteration: int, columns: tuple[str, ...] = COLUMNS) -> None:
    """Drop rows logged after the checkpoint a run resumes from (they will be logged again)."""
    if not path.exists():
        return
    with path.open() as file:
        rows = [row for row in csv.DictReader(file) if int(row["iteration"]) <= last_iteration]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


PANELS = (("return and success", ("mean_return", "success_rate")),
          ("loss", ("loss", "policy_loss", "demonstration_loss")),
          ("KL to reference", ("kl",)), ("entropy", ("entropy",)), ("clip fraction", ("clip_fraction",)),
          ("unparseable replies", ("invalid_reply_rate",)),
          ("executed level share", tuple(f"executed_{level}" for level in LEVEL_KINDS["executed"])),
          ("throughput", ("env_steps_per_second", "generated_tokens_per_second")))


def plot_learning_curves(csv_path: str | Path, png_path: str | Path) -> Path:
    """The learning curves of a run's CSV log as one PNG (`crossagent grpo --plot` renders it on demand)."""
    with Path(csv_path).open() as file:
        rows = list(csv.DictReader(file))
    iterations = [int(row["iteration"]) for row in rows]
    figure, axes = plt.subplots(2, 4, figsize=(16, 6.5))
    for axis, (title, keys) in zip(axes.flat, PANELS):
        for key in keys:
            axis.plot(iterations, [float(row[key]) if row.get(key) not in (None, "") else np.nan for row in rows],
                      marker="o" if len(rows) < 20 else None, label=key)
        axis.set_title(title)
        axis.set_xlabel("iteration")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if len(keys) > 1:
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return Path(png_path)
