"""A worker thread that answers concurrent requests in batches.

Requests that arrive while a batch is generating wait in the queue; the next batch takes
all of them (up to `max_batch_size`), one `model.generate` call per distinct setting.
Nobody waits for a batch to fill: a lone request runs at once.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from transformers import PreTrainedModel
from transformers.processing_utils import ProcessorMixin

from crossagent.models.generation import Completion, GenerationSettings, Request, generate_batch

_Job = tuple[Request, GenerationSettings, Future]


class GenerationQueue:
    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin, max_batch_size: int = 16):
        self.model = model
        self.processor = processor
        self.max_batch_size = max_batch_size
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="generation-queue", daemon=True)
        self._worker.start()

    def submit(self, request: Request, settings: GenerationSettings) -> Future[Completion]:
        future: Future[Completion] = Future()
        self._jobs.put((request, settings, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            batch = [job]
            while len(batch) < self.max_batch_size and not self._jobs.empty():
                job = self._jobs.get()
                if job is None:
                    self._jobs.put(None)  # close after this batch
                    break
                batch.append(job)
            for settings in dict.fromkeys(settings for _, settings, _ in batch):
                self._answer([job for job in batch if job[1] == settings], settings)

    def _answer(self, jobs: list[_Job], settings: GenerationSettings) -> None:
        try:
            completions = generate_batch(self.model, self.processor, [request for request, _, _ in jobs], settings)
        except Exception as error:  # a bad batch fails its requests, never the worker
            for _, _, future in jobs:
                future.set_exception(error)
            return
        for (_, _, future), completion in zip(jobs, completions):
            future.set_result(completion)
