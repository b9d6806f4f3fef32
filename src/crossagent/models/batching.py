"""A worker thread that answers concurrent requests in batches.

Requests that arrive while a batch is generating wait in the queue; the next batch takes
all of them (up to `max_batch_size`), one `model.generate` call per distinct setting (the seed
and the grammar are no settings: each row samples from its own seed, models.generation.RowSampling,
and follows its own grammar, models.constrained_decoding).
Nobody waits for a batch to fill: a lone request runs at once. If a batch fails, its
requests are generated one at a time, so a bad request fails alone. `close` ends the batch
being generated at its next token, so shutting down never waits for a long generation.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import replace

import torch
from transformers import PreTrainedModel, StoppingCriteria, StoppingCriteriaList
from transformers.processing_utils import ProcessorMixin

from crossagent.models.constrained_decoding import Grammar
from crossagent.models.generation import Completion, GenerationSettings, Request, generate_batch

_Job = tuple[Request, GenerationSettings, Grammar | None, Future]


class QueueClosed(RuntimeError):
    """The queue closed before the request was answered (the server is shutting down)."""


class StopWhenSet(StoppingCriteria):
    """Ends generation of every row once `event` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class GenerationQueue:
    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin, max_batch_size: int = 16):
        self.model = model
        self.processor = processor
        self.max_batch_size = max_batch_size
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._closing = threading.Event()
        self._worker = threading.Thread(target=self._run, name="generation-queue", daemon=True)
        self._worker.start()

    def submit(self, request: Request, settings: GenerationSettings,
               grammar: Grammar | None = None) -> Future[Completion]:
        future: Future[Completion] = Future()
        if self._closing.is_set():
            future.set_exception(QueueClosed("the server is shutting down"))
        else:
            self._jobs.put((request, settings, grammar, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Stop the running batch at its next token; it and every queued request fail with QueueClosed."""
        self._closing.set()
        self._jobs.put(None)
        self._worker.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None and not self._closing.is_set():
            batch = [job]
            while len(batch) < self.max_batch_size and not self._jobs.empty():
                job = self._jobs.get()
                if job is None:
                    self._jobs.put(None)  # close after this batch
                    break
                batch.append(job)
            for settings in dict.fromkeys(_unseeded(settings) for _, settings, _, _ in batch):
                self._answer([job for job in batch if _unseeded(job[1]) == settings], settings)
        self._fail_queued(job)

    def _answer(self, jobs: list[_Job], settings: GenerationSettings) -> None:
        if self._closing.is_set():
            self._fail(jobs, QueueClosed("the server is shutting down"))
            return
        stop = StoppingCriteriaList([StopWhenSet(self._closing)])
        seeds = [job_settings.seed if job_settings.seed is not None else int(torch.seed() % 2**31)
                 for _, job_settings, _, _ in jobs]
        try:
            completions = generate_batch(self.model, self.processor, [request for request, _, _, _ in jobs], settings,
                                         seeds=seeds, stopping_criteria=stop,
                                         grammars=[grammar for _, _, grammar, _ in jobs])
        except Exception as error:  # a bad batch fails its requests, never the worker
            if len(jobs) == 1:
                self._fail(jobs, error)
            else:  # find the bad one: alone, each request gets its own answer or error
                for job in jobs:
                    self._answer([job], settings)
            return
        if self._closing.is_set():  # cut short: not an answer
            self._fail(jobs, QueueClosed("the server is shutting down"))
            return
        for (_, _, _, future), completion in zip(jobs, completions):
            future.set_result(completion)

    def _fail_queued(self, job: _Job | None) -> None:
        jobs = [] if job is None else [job]
        while not self._jobs.empty():
            if (job := self._jobs.get()) is not None:
                jobs.append(job)
        self._fail(jobs, QueueClosed("the server is shutting down"))

    @staticmethod
    def _fail(jobs: list[_Job], error: Exception) -> None:
        for _, _, _, future in jobs:
            future.set_exception(error)


def _unseeded(settings: GenerationSettings) -> GenerationSettings:
    return replace(settings, seed=None)
