"""Multi-turn GRPO, CrossAgent's RL stage, CleanRL style: read it top to bottom; every knob is in GRPOConfig.

One iteration ("update"):
 1. Rollouts (train/rollouts.py): `tasks_per_batch` training tasks (drawn alike, or favouring the ones whose
    groups still differ: train/curriculum.py), `group_size` episodes of each
    from the identical start (world seed, start state, dynamics seed), replies sampled at
    `temperature`, a LevelAgent in dynamic mode acting on them, at most `max_episode_steps` steps;
    optionally a share of the groups starts part of the way along the expert's solution (`expert_prefix_share`;
    with `expert_prefix_kinds` "failing", only groups of kinds whose newest unprefixed group solved nothing).
 2. Advantages: every episode's return is normalised within its group, (R - mean) / (std + eps);
    each turn (one prompt and its reply) gets its episode's advantage, plus with `step_advantage_coef` w > 0
    w x its step-level one (GiGPO): its discounted return from that turn on, normalised among the group's
    turns that saw the same prompt (train/grpo_loss.step_advantages).
 3. The turns this process trains on, encoded once (prompt ids, image patches, positions, grammar
    masks: train/turn_batches.py) for every pass below; old and reference log-probabilities of every
    reply token, by a no-grad forward pass of the policy (as it is before this update) and of the
    frozen initial model. Every pass runs a micro-batch's common prompt prefix (the system prompt)
    once and the rest of each row after it: the numbers of a full pass, for a fraction of the work.
 4. `epochs_per_batch` passes over the turns in shuffled micro-batches of `minibatch_size` turns;
    an AdamW step every `gradient_accumulation_steps` micro-batches, gradients clipped to
    `max_grad_norm`, the rate warmed up over the first `warmup_steps` steps. Per reply token t:
        ratio_t = exp(logp_t - old_logp_t)
        policy_t = -min(ratio_t * A, clip(ratio_t, 1 - clip_epsilon, 1 + clip_epsilon) * A)
        kl_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1        (k3, low variance, always >= 0)
        loss_t = policy_t + kl_coef * kl_t - entropy_coef * entropy_t
    optionally plus, per optimizer step, `demonstration_coef` x the SFT reply loss of `demonstrations_per_step`
    examples of the cold start's data set (train/demonstrations.py says why), and of
    `failure_demonstrations_per_step` examples of the expert's solutions of the run's groups that solved nothing
    (train/failure_demonstrations.py).
 5. Logs (CSV, TensorBoard, console), a checkpoint every `checkpoint_every` iterations.

Normalisation: a reply's loss is the mean of loss_t over its tokens (GRPO's original sequence-level
mean: every reply weighs the same whatever its length); an optimizer step's loss is the weighted
mean over the replies (turns) in that step, across micro-batches and processes. With
`turn_weighting="episode"` (the default) a turn weighs mean_turns / its episode's turns, so every
episode counts the same: a failed episode that ran to the step cap with 40 replies does not outweigh
the group's quick successes (grpo_loss.turn_weights). "turn" weighs every reply 1. With
`update_turns_per_episode` K, the update trains on K random turns of each longer episode, each carrying
its share of the episode's weight: the same loss in expectation, at a cost that no longer grows with
the failures' length.

Old log-probs come from a recompute pass, not from the generation scores: the same code path as
the loss, so the ratio is exactly 1 before the first optimizer step (generation's KV cache, left
padding and sampling warpers give slightly different numbers; in bf16 far more), and it works
unchanged when the replies come from a vLLM server, which returns text only. With the shared
prefix it costs about 40% of one epoch's forward and backward (docs/grpo.md, Speed).

Multi-GPU: `accelerate launch` starts one process per GPU; each process rolls out its share of
the groups (group g on process g % processes), the episodes are gathered to every process,
each process trains on every processes-th turn, and DDP averages the gradients. Gradient
accumulation is explicit (no_sync on all but the last micro-batch of a step) because the
number of turns varies per batch: the last step of an epoch may have fewer micro-batches, and
every step divides by its own count of turns.

Where the rest lives: the loss, log-prob and step-plan functions in train/grpo_loss.py, the encoded
turns and the prefix-shared forward pass in train/turn_batches.py, the logs and metrics in
train/grpo_log.py, the pickle-free checkpoints in train/grpo_checkpoint.py, the rollouts in
train/rollouts.py. Every iteration re-seeds from (seed, iteration, rank), so a resumed run repeats an
uninterrupted one without any saved RNG state.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from transformers import get_constant_schedule_with_warmup

from crossagent.agents.level_agent import REQUERY_EVERY
from crossagent.folder_lock import writes_folder
from crossagent.models.generation import GenerationSettings
from crossagent.models.loading import load_model
from crossagent.models.prompts import check_prompt_style
from crossagent.models.reply_request import ReplySampler
from crossagent.models.samplers import LocalSampler, ServerSampler
from crossagent.tasks.splits import train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import Task, task_kind
from crossagent.train.curriculum import (check_settled_weight, draw_tasks, failing_kinds, informative_groups,
                                        settled_tasks)
from crossagent.train.grpo_checkpoint import MODEL_DIR, checkpoints, load_checkpoint, save_checkpoint, save_model
from crossagent.train.demonstrations import Demonstrations, load_demonstrations
from crossagent.train.failure_demonstrations import FailureDemonstrations, expert_examples, failed_groups
from crossagent.train.grpo_log import (RunLog, category_level_shares, demonstration_metrics, group_rows,
                                       logged_groups, rollout_metrics, speed_metrics, step_signal_share,
                                       update_metrics)
from crossagent.train.grpo_loss import (check_turn_weighting, grpo_loss, group_advantages, optimizer_steps, padded,
                                        reply_logprobs, sample_turns, score_turns, step_advantages, turn_weights)
from crossagent.train.rollouts import (EpisodeRollout, PrefixKinds, RolloutSettings, check_prefix_settings,
                                       collect_rollouts, draw_expert_prefixes, group_specs, turn_rewards, turn_state)
from crossagent.train.turn_batches import encode_turns

PREFIX_STREAM = 1  # the expert prefixes' random stream per (seed, iteration), apart from the draw of tasks


@dataclass
class GRPOConfig:
    """Every hyper-parameter of a run. Defaults: CrossAgent's released RL settings where they name one."""

    model: str  # local checkpoint directory of the cold-start (SFT) model; also the KL reference
    output_dir: str
    # tasks
    suite_file: str | None = None  # None: the packaged suite
    tasks_per_category: int = 10  # released: 30 training tasks, 10 per category; 0: every training task
    # rollouts
    group_size: int = 4  # episodes per task from the identical start
    tasks_per_batch: int = 8
    max_episode_steps: int = 200
    # Expert prefixes (train/rollouts.py): tasks the policy never solves from the start still give a signal.
    expert_prefix_share: float = 0.0  # share of groups that start along the expert's solution (0: none)
    # Later hand-overs leave the model less to do, and more groups all succeed; 0.5 is a middle, not a measured best
    # (benchmarks/expert_prefix_signal.py did not separate 0, 0.5 and 0.8).
    expert_prefix_earliest: float = 0.5  # the earliest hand-over, as a fraction of the expert's steps
    expert_prefix_kinds: PrefixKinds = "all"  # which groups may get one: all, or those of failing kinds (rollouts.py)
    # Demonstrations (train/demonstrations.py): the SFT loss on a labelled data set, added to every optimizer step.
    demonstration_dataset: str | None = None  # a folder saved by `crossagent data label` (the cold start's data)
    demonstrations_per_step: int = 0  # examples per optimizer step and process (0: none)
    demonstration_coef: float = 1.0  # the weight of their mean reply loss next to the GRPO loss (both sources)
    # Failure demonstrations (train/failure_demonstrations.py): the expert solves each trial whose group solved
    # nothing; examples per optimizer step and process drawn from the run's pool of those solutions (0: none).
    failure_demonstrations_per_step: int = 0
    # Curriculum (train/curriculum.py): a task whose kind's newest group had returns all equal is drawn this many
    # times as often as the others (1: every task alike).
    settled_task_weight: float = 1.0
    # Dynamic sampling (DAPO): a group whose returns are all equal has zero advantage and teaches nothing.
    dynamic_sampling: bool = False  # roll out more batches of tasks until tasks_per_batch groups differ; train on those
    sampling_rounds: int = 3  # with dynamic_sampling: at most this many batches of tasks per iteration
    history_length: int = 3  # past frames (and replies) in every prompt
    requery_every: int = REQUERY_EVERY  # k: an upper-level reply's executor runs at most k steps before the next call
    output_format: str = "mixed"
    use_image: bool = True
    use_text: bool = False
    prompt_style: str = "full"  # full (system prompt) or compact (the format's tag only), as in the SFT data
    temperature: float = 1.0  # sampling temperature of training rollouts (also scales the logits in the loss)
    top_p: float = 1.0
    max_new_tokens: int = 64
    constrained: bool = True  # rollout replies held to the output format's grammar, so they always parse
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
    turn_weighting: str = "episode"  # episode: every episode weighs the same; turn: every turn (grpo_loss.turn_weights)
    update_turns_per_episode: int = 0  # at most this many random turns of each episode in the update (0: all)
    advantage_eps: float = 1e-6
    # Step-level advantages (GiGPO; grpo_loss.step_advantages): a turn's advantage is its episode's plus this times
    # the normalised discounted return from the turn on, among the group's turns that saw the same prompt (0: none).
    step_advantage_coef: float = 0.0  # weight of the step-level (GiGPO) advantage next to the episode's (0: none)
    step_discount: float = 0.95  # per model call, in those returns (GiGPO's gamma)
    # optimisation
    learning_rate: float = 1e-6  # not in the released settings; a usual GRPO rate for a 2-7B VLM
    # Optimizer steps over which the rate rises linearly from 0 to learning_rate. AdamW's first step moves every
    # weight by the full rate whatever its gradient's size (docs/grpo.md, Warm-up); 0: no warm-up.
    warmup_steps: int = 0
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
        for name, zero in (("tasks_per_category", "every training task"), ("warmup_steps", "no warm-up"),
                           ("update_turns_per_episode", "every turn")):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 ({zero}) or more, got {getattr(self, name)}")
        for name in ("tasks_per_batch", "max_episode_steps", "sampling_rounds", "requery_every", "minibatch_size",
                     "gradient_accumulation_steps", "epochs_per_batch", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_prompt_style(self.prompt_style)
        check_turn_weighting(self.turn_weighting)
        check_settled_weight(self.settled_task_weight)
        check_prefix_settings(self.expert_prefix_share, self.expert_prefix_earliest, self.expert_prefix_kinds)
        if self.step_advantage_coef < 0 or not 0 < self.step_discount <= 1:
            raise ValueError(f"step_advantage_coef {self.step_advantage_coef} must be 0 or more and step_discount "
                             f"{self.step_discount} within (0, 1]")
        if min(self.demonstrations_per_step, self.failure_demonstrations_per_step, self.demonstration_coef) < 0:
            raise ValueError(f"demonstrations_per_step {self.demonstrations_per_step}, failure_demonstrations_per_step "
                             f"{self.failure_demonstrations_per_step} and demonstration_coef "
                             f"{self.demonstration_coef} must be 0 or more")
        if self.demonstrations_per_step and not self.demonstration_dataset:
            raise ValueError("demonstrations_per_step needs demonstration_dataset (the labelled SFT data set)")
        if self.rollout_server and not self.served_model:
            raise ValueError("rollout_server needs served_model (the name the server knows the model by)")

    def rollout_settings(self) -> RolloutSettings:
        return RolloutSettings(self.max_episode_steps, self.requery_every, self.history_length, self.output_format,
                               self.use_image, self.use_text, self.prompt_style, success_reward=self.success_reward,
                               invalid_reply_penalty=self.invalid_reply_penalty, call_cost=self.call_cost)

    def generation_settings(self, temperature: float) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens, do_sample=True, temperature=temperature,
                                  top_p=self.top_p, top_k=0)


@dataclass
class Run:
    """What training starts from: the policy and optimizer (restored from the newest checkpoint, if any)."""

    accelerator: Accelerator
    model: torch.nn.Module  # wrapped for DDP under `accelerate launch`
    processor: object
    reference: torch.nn.Module | None  # the frozen initial model; None when kl_coef is 0
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR  # the learning rate of the next optimizer step (the warm-up)
    iteration: int  # completed iterations
    resumed_from: Path | None


def make_accelerator() -> Accelerator:
    """The Accelerator of this process, distributed over every process the launcher started.

    accelerate sets up gloo for processes on CPUs only when told they run on CPUs: without `cpu=True`,
    processes launched together on a machine without GPUs would each train alone, into the same folder.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch and torchrun
    accelerator = Accelerator(cpu=launched > 1 and not torch.accelerator.is_available())
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(f"launched as {launched} processes, but accelerate set up {accelerator.num_processes}")
    return accelerator


def prepare_run(config: GRPOConfig) -> Run:
    """Resuming: the policy from the newest checkpoint's model/, the optimizer from its data files (no pickle)."""
    accelerator = make_accelerator()
    found = checkpoints(config.output_dir)
    resume = found[-1] if found else None
    device = str(accelerator.device)
    model, processor = load_model(resume / MODEL_DIR if resume else config.model, device=device,
                                  dtype=config.model_dtype)
    reference = None
    if config.kl_coef > 0:
        reference, _ = load_model(config.model, device=device, dtype=config.model_dtype)
        reference.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  betas=(config.adam_beta1, config.adam_beta2))
    model, optimizer = accelerator.prepare(model, optimizer)
    iteration = load_checkpoint(resume, accelerator, optimizer) if resume else 0
    return Run(accelerator, model, processor, reference, optimizer, warmup_schedule(optimizer, config), iteration,
               resume)


def warmup_schedule(optimizer: torch.optim.Optimizer, config: GRPOConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers' constant schedule with linear warm-up, placed at the optimizer's step count, so a resumed run
    continues the warm-up where the checkpoint left it (the count is in AdamW's state; no scheduler file)."""
    steps_done = int(next(iter(optimizer.state.values()))["step"]) if optimizer.state else 0
    for group in optimizer.param_groups:
        group["initial_lr"] = config.learning_rate
    return get_constant_schedule_with_warmup(optimizer, config.warmup_steps, last_epoch=steps_done - 1)


@dataclass
class GRPOResult:
    output_dir: str
    iterations: int  # completed, resumed ones included
    final_model: str
    history: list[dict] = field(default_factory=list)  # the metrics of the iterations run now


def practice_tasks(config: GRPOConfig) -> tuple[Task, ...]:
    """The training tasks of the config's suite: `tasks_per_category` of each category, or all of them at 0."""
    return train_tasks(load_suite(config.suite_file), config.tasks_per_category or None)


@writes_folder(lambda call: call["config"].output_dir)
def train(config: GRPOConfig, tasks: tuple[Task, ...] | None = None) -> GRPOResult:
    """Run iterations until `config.updates` are done, resuming from the newest checkpoint in output_dir."""
    run = prepare_run(config)
    if run.iteration > config.updates:  # the loop below would not run, and `final` would be a later model
        raise ValueError(f"{run.resumed_from} is iteration {run.iteration}, past updates {config.updates}: "
                         f"ask for at least {run.iteration} updates, or train into another output folder")
    accelerator, model, processor, optimizer = run.accelerator, run.model, run.processor, run.optimizer
    rank, processes = accelerator.process_index, accelerator.num_processes
    tasks = tasks or practice_tasks(config)
    if not tasks:
        raise ValueError("no training tasks")
    settings = config.rollout_settings()
    policy = accelerator.unwrap_model(model)
    sampler: ReplySampler = (
        ServerSampler(config.rollout_server, config.served_model, processor.tokenizer, config.temperature,
                      config.top_p, config.max_new_tokens, constrained=config.constrained) if config.rollout_server
        else LocalSampler(policy, processor, config.generation_settings(config.temperature), config.constrained))
    demonstrations = (Demonstrations(load_demonstrations(config.demonstration_dataset), processor,
                                     config.demonstrations_per_step) if config.demonstrations_per_step else None)
    failures = (FailureDemonstrations(config.output_dir, processor, config.failure_demonstrations_per_step,
                                      run.iteration, accelerator.is_main_process)
                if config.failure_demonstrations_per_step else None)
    log = RunLog(config, run.iteration, accelerator.is_main_process)
    accelerator.wait_for_everyone()  # the main process has dropped log rows past the checkpoint
    # The group log is the state of the curriculum and of prefixes for failing kinds: rebuilt on resuming.
    targeted = config.expert_prefix_kinds == "failing"
    logged = logged_groups(Path(config.output_dir), run.iteration, config.settled_task_weight < 1 or targeted)
    settled, failing = settled_tasks(logged), failing_kinds(logged)
    history = []

    for iteration in range(run.iteration + 1, config.updates + 1):
        set_seed(config.seed * 1_000_003 + iteration * 101 + rank)

        # 1. Rollouts, a batch of tasks per round: this process runs groups g with g % processes == rank; every
        # process gets all episodes, so all take the same decision to go on. Without dynamic sampling, one round.
        rounds = config.sampling_rounds if config.dynamic_sampling else 1
        chosen = draw_tasks(tasks, config.tasks_per_batch * rounds, config.seed, iteration, settled,
                            config.settled_task_weight)
        eligible = [failing.get(task_kind(task.id), False) for task in chosen] if targeted else None
        prefixes = draw_expert_prefixes(len(chosen), config.expert_prefix_share, config.expert_prefix_earliest,
                                        np.random.default_rng([config.seed, iteration, PREFIX_STREAM]), eligible)
        all_specs = group_specs(chosen, config.group_size, first_trial=iteration * config.tasks_per_batch * rounds,
                                expert_prefixes=prefixes)
        episodes, timings = [], []
        for round_ in range(rounds):
            groups = range(round_ * config.tasks_per_batch, (round_ + 1) * config.tasks_per_batch)
            specs = [spec for spec in all_specs if spec.group in groups and spec.group % processes == rank]
            batch = collect_rollouts(specs, sampler, settings,
                                     seed=config.seed * 1_000_003 + iteration * 1_009 + round_ * 7_919 + rank)
            episodes += sorted(gather_object(batch.episodes), key=lambda e: (e.spec.group, e.spec.member))
            stats = batch.stats
            timings += gather_object([(stats.seconds, stats.generation_seconds, stats.generated_tokens,
                                       stats.env_steps)])
            if len(informative_groups(episodes)) >= config.tasks_per_batch:
                break

        # 2. Advantages: normalised within each group; each turn gets its episode's, plus optionally its step-level
        # one among the group's turns with the same prompt. With dynamic sampling, only the first tasks_per_batch
        # groups whose returns differ are trained on.
        returns = torch.tensor([episode.episode_return for episode in episodes])
        advantages = group_advantages(returns, torch.tensor([e.spec.group for e in episodes]), config.advantage_eps)
        steps = (step_advantages([e.spec.group for e in episodes], [[turn_state(t) for t in e.turns] for e in episodes],
                                 [turn_rewards(e, settings) for e in episodes], config.step_discount,
                                 config.advantage_eps)
                 if config.step_advantage_coef else [[0.0] * len(e.turns) for e in episodes])
        per_turn = [[a + config.step_advantage_coef * s for s in episode_steps]
                    for a, episode_steps in zip(advantages.tolist(), steps)]
        trained = (set(informative_groups(episodes)[:config.tasks_per_batch]) if config.dynamic_sampling
                   else {episode.spec.group for episode in episodes})
        kept = [(episode, a) for episode, a in zip(episodes, per_turn) if episode.spec.group in trained]
        # Optionally a random subset of each episode's turns (the same on every process), weighted to stand for all.
        picked = sample_turns([len(episode.turns) for episode, _ in kept], config.update_turns_per_episode,
                              np.random.default_rng([config.seed, iteration]))
        turns = [episode.turns[i] for (episode, _), indices in zip(kept, picked) for i in indices]
        turn_advantages = torch.tensor([a[i] for (_, a), indices in zip(kept, picked) for i in indices],
                                       device=accelerator.device)
        # Each turn's share of the loss: every episode the same by default (turn_weights says why).
        loss_weights = turn_weights([len(episode.turns) for episode, _ in kept], config.turn_weighting,
                                    [len(indices) for indices in picked]).to(accelerator.device)

        # The expert's solutions of the groups that solved nothing join the pool of failure demonstrations (every
        # process computes the same, from the same gathered episodes).
        if failures is not None:
            failures.add(iteration, expert_examples(failed_groups(episodes), settings, config.suite_file))

        # 3. The turns this process trains on, encoded once for every pass below (train/turn_batches.py), and
        # their old and reference log-probs (fixed for the iteration), each over the tokens its grammar allowed
        # when the rollouts were constrained (the policy that sampled).
        update_started = time.perf_counter()
        mine = list(range(rank, len(turns), processes)) or [0]
        encoded = encode_turns(turns, mine, policy, processor, config.constrained) if turns else {}
        old_logp = score_turns(policy, encoded, config.temperature, config.minibatch_size)
        ref_logp = (score_turns(run.reference, encoded, config.temperature, config.minibatch_size)
                    if run.reference is not None else None)
        lengths = {index: len(turn.prompt_ids) + len(turn.reply_ids) for index, turn in encoded.items()}

        # 4. Update: epochs of shuffled micro-batches, an optimizer step every gradient_accumulation_steps.
        sums = torch.zeros(6, device=accelerator.device)  # turns, loss, policy, kl, entropy, clip fraction
        # examples and their loss, per source: the cold start's data set, the failure demonstrations
        demonstration_sums = torch.zeros(2, 2, device=accelerator.device)
        sources = [(row, source) for row, source in enumerate((demonstrations,
                                                              failures.demonstrations if failures else None))
                   if source is not None]
        grad_norms = []
        for epoch in range(config.epochs_per_batch if turns else 0):  # no turns: no group had a signal
            rng = np.random.default_rng([config.seed, iteration, epoch, rank])
            for step_number, step in enumerate(optimizer_steps(len(turns), processes, rank, config.minibatch_size,
                                                               config.gradient_accumulation_steps, rng, lengths)):
                # Demonstrations: before the step's synchronised backward, which all-reduces their gradients too.
                # The forward runs on the unwrapped policy, under the autocast that the DDP wrapper would add.
                for row, source in sources:
                    with accelerator.no_sync(model), accelerator.autocast():
                        loss = source.loss(policy, config.seed, iteration, epoch, step_number, rank)
                        accelerator.backward(config.demonstration_coef * loss)
                    demonstration_sums[row] += torch.tensor([source.per_step, source.per_step * loss.item()],
                                                            device=accelerator.device)
                for number, (indices, weights) in enumerate(zip(step.micro_batches, step.weights)):
                    last = number == len(step.micro_batches) - 1
                    with nullcontext() if last else accelerator.no_sync(model):
                        logp, mask, entropy = reply_logprobs(model, [encoded[i] for i in indices],
                                                             config.temperature, with_entropy=True)
                        width = logp.shape[1]
                        terms = grpo_loss(
                            logp, padded([old_logp[i] for i in indices], width),
                            padded([ref_logp[i] for i in indices], width) if ref_logp is not None else None,
                            turn_advantages[indices], mask, entropy, config.clip_epsilon, config.kl_coef,
                            config.entropy_coef)
                        weight = torch.tensor(weights, device=logp.device) * loss_weights[indices]
                        # DDP averages gradients over processes: scale so the step is the mean over its turns.
                        accelerator.backward((terms.per_sample * weight).sum() * processes / step.turns)
                    with torch.no_grad():
                        sums += torch.stack([weight.sum(), *((values.detach() * weight).sum() for values in (
                            terms.per_sample, terms.policy, terms.kl, terms.entropy, terms.clip_fraction))])
                grad_norms.append(float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)))
                optimizer.step()
                run.schedule.step()
                optimizer.zero_grad()
        sums = accelerator.reduce(sums, reduction="sum")
        demonstration_sums = accelerator.reduce(demonstration_sums, reduction="sum")
        update_seconds = time.perf_counter() - update_started

        # 5. Log and checkpoint.
        metrics = {"iteration": iteration, **rollout_metrics(episodes, advantages), "trained_groups": len(trained),
                   "trained_turns": len(turns), "step_signal_turns": step_signal_share(steps),
                   **update_metrics(sums, grad_norms), **demonstration_metrics(demonstration_sums[0]),
                   **demonstration_metrics(demonstration_sums[1], "failure_"),
                   "failure_demonstration_pool": failures.size if failures else 0,
                   **speed_metrics(timings, update_seconds)}
        history.append(metrics)
        group_log = group_rows(episodes, trained, iteration)
        settled.update(settled_tasks(group_log))
        failing.update(failing_kinds(group_log))
        log.write(metrics, category_level_shares(episodes, iteration), group_log)
        if iteration % config.checkpoint_every == 0 or iteration == config.updates:
            save_checkpoint(config, iteration, accelerator, model, processor, optimizer)
            log.plot()

    final = Path(config.output_dir) / "final"
    if accelerator.is_main_process:
        save_model(final, policy, processor)
    log.plot()
    log.close()
    accelerator.wait_for_everyone()
    return GRPOResult(str(Path(config.output_dir)), max(run.iteration, config.updates), str(final), history)
