"""Multi-turn GRPO, CrossAgent's RL stage, CleanRL style: read it top to bottom; every knob is in GRPOConfig.

One iteration ("update"):
 1. Rollouts (train/rollouts.py): `tasks_per_batch` training tasks, `group_size` episodes of each
    from the identical start (world seed, start state, dynamics seed), replies sampled at
    `temperature`, a LevelAgent in dynamic mode acting on them, at most `max_episode_steps` steps.
 2. Advantages: every episode's return is normalised within its group, (R - mean) / (std + eps);
    each turn (one prompt and its reply) gets its episode's advantage.
 3. Old and reference log-probabilities of every reply token, by a no-grad forward pass of the
    policy (as it is before this update) and of the frozen initial model.
 4. `epochs_per_batch` passes over the turns in shuffled micro-batches of `minibatch_size` turns;
    an AdamW step every `gradient_accumulation_steps` micro-batches, gradients clipped to
    `max_grad_norm`. Per reply token t:
        ratio_t = exp(logp_t - old_logp_t)
        policy_t = -min(ratio_t * A, clip(ratio_t, 1 - clip_epsilon, 1 + clip_epsilon) * A)
        kl_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1        (k3, low variance, always >= 0)
        loss_t = policy_t + kl_coef * kl_t - entropy_coef * entropy_t
 5. Logs (CSV, TensorBoard), a checkpoint every `checkpoint_every` iterations.

Normalisation: a reply's loss is the mean of loss_t over its tokens; an optimizer step's loss is
the mean over the replies (turns) in that step, across micro-batches and processes. So every
reply weighs the same whatever its length (GRPO's original sequence-level mean; a long reply's
tokens weigh less each).

Old log-probs come from a recompute pass, not from the generation scores: the same code path as
the loss, so the ratio is exactly 1 before the first optimizer step (generation's KV cache, left
padding and sampling warpers give slightly different numbers), and it works unchanged when the
replies come from a vLLM server, which returns text only.

Multi-GPU: `accelerate launch` starts one process per GPU; each process rolls out its share of
the groups (group g on process g % processes), the episodes are gathered to every process,
each process trains on every processes-th turn, and DDP averages the gradients. Gradient
accumulation is explicit (no_sync on all but the last micro-batch of a step) because the
number of turns varies per batch: the last step of an epoch may have fewer micro-batches, and
every step divides by its own count of turns.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from accelerate.utils import gather_object, set_seed  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from trl.trainer.utils import selective_log_softmax  # noqa: E402

from crossagent.bench.metrics import LEVEL_KINDS, level_shares  # noqa: E402
from crossagent.agents.model_policy import SampledTurn  # noqa: E402
from crossagent.models.generation import GenerationSettings  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.processor import save_processor  # noqa: E402
from crossagent.models.samplers import LocalSampler, ReplySampler, ServerSampler  # noqa: E402
from crossagent.tasks.splits import train_tasks  # noqa: E402
from crossagent.tasks.suite import load_suite  # noqa: E402
from crossagent.tasks.task import Task  # noqa: E402
from crossagent.train.rollouts import EpisodeRollout, RolloutSettings, collect_rollouts, group_specs  # noqa: E402


@dataclass
class GRPOConfig:
    """Every hyper-parameter of a run. Defaults: CrossAgent's released RL settings where they name one."""

    model: str  # local checkpoint directory of the cold-start (SFT) model; also the KL reference
    output_dir: str
    # tasks
    suite_file: str | None = None  # None: the packaged suite
    tasks_per_category: int = 10  # released: 30 training tasks, 10 per category
    # rollouts
    group_size: int = 4  # episodes per task from the identical start
    tasks_per_batch: int = 8
    max_episode_steps: int = 200
    history_length: int = 3  # past frames (and replies) in every prompt
    requery_every: int = 4  # k: an upper-level reply's executor runs at most k steps before the next call
    output_format: str = "mixed"
    use_image: bool = True
    use_text: bool = False
    temperature: float = 1.0  # sampling temperature of training rollouts (also scales the logits in the loss)
    top_p: float = 1.0
    max_new_tokens: int = 64
    rollout_server: str | None = None  # OpenAI-compatible base URL (…/v1) to sample from instead of in-process
    served_model: str | None = None  # the model name the server knows
    # reward
    success_reward: float = 1.0
    invalid_reply_penalty: float = 0.1  # per unparseable reply, subtracted from the episode return
    call_cost: float = 0.0  # per model call, subtracted from the episode return
    # loss
    clip_epsilon: float = 0.2
    kl_coef: float = 0.01  # 0 skips the reference model
    entropy_coef: float = 0.001
    advantage_eps: float = 1e-6
    # optimisation
    learning_rate: float = 1e-6  # not in the released settings; a usual GRPO rate for a 2-7B VLM
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0
    minibatch_size: int = 4  # turns per forward/backward pass (per process)
    gradient_accumulation_steps: int = 8  # micro-batches per optimizer step
    epochs_per_batch: int = 1
    updates: int = 100  # iterations: one rollout batch, then its update
    model_dtype: str = "float32"  # weights and AdamW state; use `accelerate launch --mixed_precision bf16` for speed
    # bookkeeping
    seed: int = 0
    checkpoint_every: int = 10
    keep_checkpoints: int = 2  # older checkpoints are deleted

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"group_size {self.group_size}: GRPO needs at least 2 episodes per group")
        for name in ("tasks_per_batch", "max_episode_steps", "requery_every", "minibatch_size",
                     "gradient_accumulation_steps", "epochs_per_batch", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.rollout_server and not self.served_model:
            raise ValueError("rollout_server needs served_model (the name the server knows the model by)")

    def rollout_settings(self) -> RolloutSettings:
        return RolloutSettings(self.max_episode_steps, self.requery_every, self.history_length, self.output_format,
                               self.use_image, self.use_text, success_reward=self.success_reward,
                               invalid_reply_penalty=self.invalid_reply_penalty, call_cost=self.call_cost)

    def generation_settings(self, temperature: float) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens, do_sample=True, temperature=temperature,
                                  top_p=self.top_p, top_k=0)


# --- the loss, as pure functions of tensors ----------------------------------------------------
def group_advantages(returns: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(R - group mean) / (group std + eps), std with Bessel's correction as in TRL and verl.

    A group whose returns are all equal (or a group of one) gets exactly 0: it carries no signal.
    """
    returns = returns.to(torch.float32)
    advantages = torch.zeros_like(returns)
    for group in group_ids.unique():
        members = group_ids == group
        values = returns[members]
        if values.numel() < 2 or bool((values == values[0]).all()):
            continue
        advantages[members] = (values - values.mean()) / (values.std() + eps)
    return advantages


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate exp(ref - logp) - (ref - logp) - 1 (Schulman's k3)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the last dimension's unmasked entries: one value per row."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, clip_epsilon: float) -> torch.Tensor:
    """PPO's clipped surrogate, negated, averaged over each reply's tokens: one value per reply."""
    ratio = torch.exp(logp - old_logp)
    advantage = advantages.unsqueeze(-1)
    surrogate = torch.min(ratio * advantage, torch.clamp(ratio, 1 - clip_epsilon, 1 + clip_epsilon) * advantage)
    return masked_mean(-surrogate, mask)


def clipped_share(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  clip_epsilon: float) -> torch.Tensor:
    """Per reply, the share of tokens where the clip is active (ratio beyond 1 ± eps in the advantage's direction)."""
    ratio = torch.exp(logp - old_logp)
    advantage = advantages.unsqueeze(-1)
    clipped = ((ratio > 1 + clip_epsilon) & (advantage > 0)) | ((ratio < 1 - clip_epsilon) & (advantage < 0))
    return masked_mean(clipped.to(logp.dtype), mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last dimension, in nats."""
    log_probs = torch.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1)


@dataclass
class LossTerms:
    per_sample: torch.Tensor  # [replies] policy + kl_coef * kl - entropy_coef * entropy
    policy: torch.Tensor  # [replies]
    kl: torch.Tensor  # [replies]
    entropy: torch.Tensor  # [replies]
    clip_fraction: torch.Tensor  # [replies]

    @property
    def loss(self) -> torch.Tensor:
        """Mean over replies of each reply's mean over its tokens."""
        return self.per_sample.mean()


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, entropy: torch.Tensor, clip_epsilon: float,
              kl_coef: float, entropy_coef: float) -> LossTerms:
    """All tensors [replies, tokens] except advantages [replies]; mask 1 on reply tokens, 0 on padding."""
    policy = clipped_policy_loss(logp, old_logp, advantages, mask, clip_epsilon)
    kl = masked_mean(kl_k3(logp, ref_logp), mask) if ref_logp is not None else torch.zeros_like(policy)
    mean_entropy = masked_mean(entropy, mask)
    with torch.no_grad():
        clip_fraction = clipped_share(logp, old_logp, advantages, mask, clip_epsilon)
    return LossTerms(policy + kl_coef * kl - entropy_coef * mean_entropy, policy, kl, mean_entropy, clip_fraction)


# --- log-probabilities of the reply tokens ------------------------------------------------------
def reply_logprobs(model, processor, turns: list[SampledTurn], temperature: float, with_entropy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(log-probs [turns, tokens], mask, entropies or None) of each turn's reply tokens after its prompt.

    Rows are [left-padded prompt | reply | right padding], the layout generation saw, and the model
    computes logits only for the reply positions (logits_to_keep).
    """
    texts = [processor.apply_chat_template(turn.messages, add_generation_prompt=True, tokenize=False)
             for turn in turns]
    images = [image for turn in turns for image in turn.images]
    inputs = dict(processor(text=texts, images=images or None, padding=True, padding_side="left",
                            return_tensors="pt"))
    width = max(len(turn.token_ids) for turn in turns)
    reply_ids = torch.full((len(turns), width), processor.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(turns), width), dtype=torch.long)
    for row, turn in enumerate(turns):
        reply_ids[row, :len(turn.token_ids)] = torch.tensor(turn.token_ids)
        mask[row, :len(turn.token_ids)] = 1
    inputs["input_ids"] = torch.cat([inputs["input_ids"], reply_ids], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], mask], dim=1)
    if "mm_token_type_ids" in inputs:  # text tokens are type 0
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(reply_ids)], dim=1)
    device = next(model.parameters()).device
    inputs = {name: value.to(device) for name, value in inputs.items()}
    reply_ids, mask = reply_ids.to(device), mask.to(device)
    # Position p predicts token p + 1: the reply's logits are the width positions before the last one.
    logits = model(**inputs, logits_to_keep=width + 1, use_cache=False).logits[:, :-1].float() / temperature
    logp = selective_log_softmax(logits, reply_ids)
    return logp, mask, entropy_from_logits(logits) if with_entropy else None


@torch.no_grad()
def score_turns(model, processor, turns: list[SampledTurn], indices: list[int], temperature: float,
                batch_size: int) -> dict[int, torch.Tensor]:
    """Log-probs of the replies of turns[indices], one 1-D tensor per turn."""
    scores = {}
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        logp, _, _ = reply_logprobs(model, processor, [turns[i] for i in chunk], temperature)
        for row, index in enumerate(chunk):
            scores[index] = logp[row, :len(turns[index].token_ids)]
    return scores


def padded(rows: list[torch.Tensor], width: int) -> torch.Tensor:
    out = rows[0].new_zeros((len(rows), width))
    for row, values in enumerate(rows):
        out[row, :len(values)] = values
    return out


# --- which turns go into which optimizer step, on which process ---------------------------------
@dataclass(frozen=True)
class OptimizerStep:
    micro_batches: list[list[int]]  # this process's turn indices, at most minibatch_size per micro-batch
    weights: list[list[float]]  # 1.0, or 0.0 for a filler row (keeps every process's pass count equal)
    turns: int  # real turns in this step over all processes: the step's loss is their mean


def optimizer_steps(num_turns: int, num_processes: int, process_index: int, minibatch_size: int,
                    accumulation: int, rng: np.random.Generator) -> list[OptimizerStep]:
    """One epoch. Process p owns turns p, p + P, p + 2P, ... (shuffled); under DDP every process must run
    the same number of forward/backward passes, so shorter shards end with zero-weight filler rows."""
    shard = rng.permutation(np.arange(process_index, num_turns, num_processes)).tolist()
    shard_sizes = [len(range(p, num_turns, num_processes)) for p in range(num_processes)]
    width = max(shard_sizes)
    filler = shard[0] if shard else 0
    per_step = minibatch_size * accumulation
    steps = []
    for start in range(0, width, per_step):
        rows = list(range(start, min(start + per_step, width)))
        micro = [rows[i:i + minibatch_size] for i in range(0, len(rows), minibatch_size)]
        steps.append(OptimizerStep(
            micro_batches=[[shard[r] if r < len(shard) else filler for r in batch] for batch in micro],
            weights=[[1.0 if r < len(shard) else 0.0 for r in batch] for batch in micro],
            turns=sum(min(max(size - start, 0), per_step) for size in shard_sizes)))
    return steps


# --- training state, checkpoints ----------------------------------------------------------------
class Progress:
    """Completed iterations; saved with the accelerator state."""

    def __init__(self) -> None:
        self.iteration = 0

    def state_dict(self) -> dict:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])


CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"  # written last: a checkpoint without it is incomplete and ignored
LOG_CSV = "grpo_log.csv"
LEVEL_CSV = "level_shares.csv"  # per category: bench.level_shares draws it
LEVEL_SHARES_PNG = "level_shares.png"
LEVEL_COLUMNS = ("iteration", "category", "kind", "level", "share")
CURVES_PNG = "grpo_curves.png"


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    found = [path for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if (path / STATE_FILE).is_file()]
    return sorted(found, key=lambda path: int(path.name.removeprefix(CHECKPOINT_PREFIX)))


@dataclass
class Run:
    config: GRPOConfig
    accelerator: Accelerator
    model: torch.nn.Module  # wrapped for DDP under `accelerate launch`
    processor: object
    reference: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    progress: Progress
    resumed_from: Path | None


def prepare_run(config: GRPOConfig) -> Run:
    """Load the policy (from the newest checkpoint when there is one), the reference, the optimizer; resume."""
    accelerator = Accelerator()
    output = Path(config.output_dir)
    found = checkpoints(output)
    resume = found[-1] if found else None
    device = str(accelerator.device)
    # Resuming loads the policy from the checkpoint's model/ directly; accelerate restores the rest.
    model, processor = load_model(resume / "model" if resume else config.model, device=device,
                                  dtype=config.model_dtype)
    reference = None
    if config.kl_coef > 0:
        reference, _ = load_model(config.model, device=device, dtype=config.model_dtype)
        reference.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  betas=(config.adam_beta1, config.adam_beta2))
    model, optimizer = accelerator.prepare(model, optimizer)
    progress = Progress()
    accelerator.register_for_checkpointing(progress)

    def save_model(models, weights, directory):
        # The policy goes into model/ as a transformers checkpoint (loadable by load_model, servable),
        # instead of accelerate's bare state dict.
        if accelerator.is_main_process:
            accelerator.unwrap_model(models[0]).save_pretrained(Path(directory) / "model")
            save_processor(processor, Path(directory) / "model")
        weights.pop()

    def skip_model(models, directory):
        models.pop()  # already loaded from model/

    accelerator.register_save_state_pre_hook(save_model)
    accelerator.register_load_state_pre_hook(skip_model)
    if resume is not None:
        accelerator.load_state(str(resume))  # optimizer, RNG states, Progress
    return Run(config, accelerator, model, processor, reference, optimizer, progress, resume)


def save_checkpoint(run: Run) -> Path:
    path = Path(run.config.output_dir) / f"{CHECKPOINT_PREFIX}{run.progress.iteration:06d}"
    run.accelerator.save_state(str(path))
    if run.accelerator.is_main_process:
        state = {"iteration": run.progress.iteration, "config": asdict(run.config)}
        (path / STATE_FILE).write_text(json.dumps(state, indent=1))
        for old in checkpoints(run.config.output_dir)[:-run.config.keep_checkpoints]:
            shutil.rmtree(old)
    run.accelerator.wait_for_everyone()
    return path


# --- metrics ------------------------------------------------------------------------------------
COLUMNS = ("iteration", "episodes", "turns", "env_steps", "mean_return", "success_rate", "mean_episode_steps",
           "invalid_reply_rate", "zero_advantage_groups", "loss", "policy_loss", "kl", "entropy", "clip_fraction",
           "grad_norm", *(f"{kind}_{level}" for kind, levels in LEVEL_KINDS.items() for level in levels),
           "steps_per_call", "rollout_seconds", "update_seconds", "env_steps_per_second", "generated_tokens_per_second")


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


PANELS = (("return and success", ("mean_return", "success_rate")), ("loss", ("loss", "policy_loss")),
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


# --- the training loop --------------------------------------------------------------------------
@dataclass
class GRPOResult:
    output_dir: str
    iterations: int  # completed, resumed ones included
    final_model: str
    history: list[dict] = field(default_factory=list)  # the metrics of the iterations run now


def batch_tasks(tasks: tuple[Task, ...], count: int, seed: int, iteration: int) -> list[Task]:
    """The iteration's tasks: a seeded draw, without repeats while there are enough tasks."""
    rng = np.random.default_rng([seed, iteration])
    return [tasks[i] for i in rng.choice(len(tasks), size=count, replace=count > len(tasks))]


def train(config: GRPOConfig, tasks: tuple[Task, ...] | None = None) -> GRPOResult:
    """Run iterations until `config.updates` are done, resuming from the newest checkpoint in output_dir."""
    run = prepare_run(config)
    accelerator, model, processor, optimizer = run.accelerator, run.model, run.processor, run.optimizer
    rank, processes = accelerator.process_index, accelerator.num_processes
    output = Path(config.output_dir)
    tasks = tasks or train_tasks(load_suite(config.suite_file), config.tasks_per_category)
    if not tasks:
        raise ValueError("no training tasks")
    settings = config.rollout_settings()
    policy = accelerator.unwrap_model(model)
    sampler: ReplySampler = (
        ServerSampler(config.rollout_server, config.served_model, processor.tokenizer, config.temperature,
                      config.top_p, config.max_new_tokens) if config.rollout_server
        else LocalSampler(policy, processor, config.generation_settings(config.temperature)))
    writer = None
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        (output / "grpo_config.json").write_text(json.dumps(asdict(config), indent=1))
        truncate_csv(output / LOG_CSV, run.progress.iteration)
        truncate_csv(output / LEVEL_CSV, run.progress.iteration, LEVEL_COLUMNS)
        writer = SummaryWriter(str(output / "tensorboard"), purge_step=run.progress.iteration + 1)
    history = []

    while run.progress.iteration < config.updates:
        iteration = run.progress.iteration + 1
        set_seed(config.seed * 1_000_003 + iteration * 101 + rank)

        # 1. Rollouts: this process runs groups g with g % processes == rank; every process gets all episodes.
        chosen = batch_tasks(tasks, config.tasks_per_batch, config.seed, iteration)
        specs = [spec for spec in group_specs(chosen, config.group_size, first_trial=iteration * config.tasks_per_batch)
                 if spec.group % processes == rank]
        batch = collect_rollouts(specs, sampler, settings, seed=config.seed * 1_000_003 + iteration * 1_009 + rank)
        episodes = sorted(gather_object(batch.episodes), key=lambda e: (e.spec.group, e.spec.member))
        stats = batch.stats
        timings = gather_object([(stats.seconds, stats.generation_seconds, stats.generated_tokens, stats.env_steps)])

        # 2. Advantages: normalised within each group; each turn gets its episode's.
        returns = torch.tensor([episode.episode_return for episode in episodes])
        advantages = group_advantages(returns, torch.tensor([e.spec.group for e in episodes]), config.advantage_eps)
        turns = [turn for episode in episodes for turn in episode.turns]
        turn_advantages = torch.tensor([a for episode, a in zip(episodes, advantages.tolist())
                                        for _ in episode.turns], device=accelerator.device)

        # 3. Old and reference log-probs of the turns this process trains on (they are fixed for the iteration).
        update_started = time.perf_counter()
        mine = list(range(rank, len(turns), processes)) or [0]
        old_logp = score_turns(policy, processor, turns, mine, config.temperature, config.minibatch_size)
        ref_logp = (score_turns(run.reference, processor, turns, mine, config.temperature, config.minibatch_size)
                    if run.reference is not None else None)

        # 4. Update: epochs of shuffled micro-batches, an optimizer step every gradient_accumulation_steps.
        sums = torch.zeros(6, device=accelerator.device)  # weight, loss, policy, kl, entropy, clip fraction
        grad_norms = []
        for epoch in range(config.epochs_per_batch):
            rng = np.random.default_rng([config.seed, iteration, epoch, rank])
            for step in optimizer_steps(len(turns), processes, rank, config.minibatch_size,
                                        config.gradient_accumulation_steps, rng):
                for number, (indices, weights) in enumerate(zip(step.micro_batches, step.weights)):
                    last = number == len(step.micro_batches) - 1
                    with nullcontext() if last else accelerator.no_sync(model):
                        logp, mask, entropy = reply_logprobs(model, processor, [turns[i] for i in indices],
                                                             config.temperature, with_entropy=True)
                        width = logp.shape[1]
                        terms = grpo_loss(
                            logp, padded([old_logp[i] for i in indices], width),
                            padded([ref_logp[i] for i in indices], width) if ref_logp is not None else None,
                            turn_advantages[indices], mask, entropy, config.clip_epsilon, config.kl_coef,
                            config.entropy_coef)
                        weight = torch.tensor(weights, device=logp.device)
                        # DDP averages gradients over processes: scale so the step is the mean over its turns.
                        accelerator.backward((terms.per_sample * weight).sum() * processes / step.turns)
                    with torch.no_grad():
                        sums += torch.stack([weight.sum(), *((values.detach() * weight).sum() for values in (
                            terms.per_sample, terms.policy, terms.kl, terms.entropy, terms.clip_fraction))])
                grad_norms.append(float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)))
                optimizer.step()
                optimizer.zero_grad()
        sums = accelerator.reduce(sums, reduction="sum")
        update_seconds = time.perf_counter() - update_started
        run.progress.iteration = iteration

        # 5. Log and checkpoint.
        rollout_seconds = max(max(t[0] for t in timings), 1e-9)
        generation_seconds = max(max(t[1] for t in timings), 1e-9)
        metrics = {"iteration": iteration, **rollout_metrics(episodes, advantages),
                   "loss": float(sums[1] / sums[0]), "policy_loss": float(sums[2] / sums[0]),
                   "kl": float(sums[3] / sums[0]), "entropy": float(sums[4] / sums[0]),
                   "clip_fraction": float(sums[5] / sums[0]), "grad_norm": float(np.mean(grad_norms)),
                   "rollout_seconds": rollout_seconds, "update_seconds": update_seconds,
                   "env_steps_per_second": sum(t[3] for t in timings) / rollout_seconds,
                   "generated_tokens_per_second": sum(t[2] for t in timings) / generation_seconds}
        history.append(metrics)
        if accelerator.is_main_process:
            append_csv(output / LOG_CSV, [metrics])
            append_csv(output / LEVEL_CSV, category_level_shares(episodes, iteration), LEVEL_COLUMNS)
            for name, value in metrics.items():
                if name != "iteration":
                    writer.add_scalar(f"grpo/{name}", value, iteration)
            writer.flush()
            print(f"iteration {iteration}/{config.updates}: return {metrics['mean_return']:.3f} "
                  f"success {metrics['success_rate']:.2f} loss {metrics['loss']:.4f} kl {metrics['kl']:.4f} "
                  f"unparseable {metrics['invalid_reply_rate']:.2f} "
                  f"({metrics['env_steps_per_second']:.1f} env steps/s, "
                  f"{metrics['generated_tokens_per_second']:.0f} tokens/s)", flush=True)
        if iteration % config.checkpoint_every == 0 or iteration == config.updates:
            save_checkpoint(run)
            if accelerator.is_main_process:
                plot_learning_curves(output / LOG_CSV, output / CURVES_PNG)

    final = output / "final"
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(final)
        save_processor(processor, final)
        if (output / LOG_CSV).exists():
            plot_learning_curves(output / LOG_CSV, output / CURVES_PNG)
        writer.close()
    accelerator.wait_for_everyone()
    return GRPOResult(str(output), run.progress.iteration, str(final), history)
