"""Independent jobs run serially or through an executor: progress as they finish, results in order.

Used by ``compress_model`` (one job per layer) and ``tnkit compress`` (one per tensor). An
executor is anything with ``.submit(fn, *args)`` returning futures: a ``concurrent.futures``
executor or a ``distributed.Client``. Futures with ``add_done_callback`` (both of those) are
reported as they finish; results always come back in job order, and a failure is the one a
serial run would raise: that of the first failing job in order.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["Jobs", "check_executor"]


def check_executor(executor: Any) -> None:
    """A TypeError naming ``executor`` unless it is None or has a callable ``submit``."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor: expected an object with .submit(fn, *args) (a concurrent.futures "
            f"Executor or a dask Client), got {type(executor).__name__}"
        )


class Jobs:
    """``fn(*args)`` for every ``args`` of ``jobs``, serially (``executor`` None) or through
    ``executor``, run as this object is iterated.

    Iterating yields ``labels[k]`` as job ``k`` finishes (serially: in order, one job per
    step; with an executor: all submitted at once, yielded in the order they finish);
    ``len()`` is the number of jobs, so ``tqdm(Jobs(...))`` knows its total; ``latest`` is
    the result of the job just yielded. After a full iteration ``results`` holds the
    results in job order. If jobs fail, iteration raises the
    exception of the first failing job in order, as a serial run would: later jobs are
    cancelled and earlier ones awaited first. Stopping the iteration early cancels what is
    still pending.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple],
        executor: Any = None,
        labels: Sequence[Any] | None = None,
    ) -> None:
        check_executor(executor)
        self.fn, self.jobs, self.executor = fn, list(jobs), executor
        self.labels = list(range(len(self.jobs))) if labels is None else list(labels)
        if len(self.labels) != len(self.jobs):
            raise ValueError(f"labels: expected {len(self.jobs)}, got {len(self.labels)}")
        self._results: list[Any] = [None] * len(self.jobs)
        self._done = False
        self.latest: Any = None

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def results(self) -> list[Any]:
        """The results in job order (after the iteration has finished)."""
        if not self._done:
            raise RuntimeError("Jobs.results: iterate over the jobs first")
        return list(self._results)

    def __iter__(self) -> Iterator[Any]:
        if self.executor is None:
            for k, args in enumerate(self.jobs):
                self._results[k] = self.fn(*args)
                yield self._finished(k)
        else:
            yield from self._submitted()
        self._done = True

    def _finished(self, k: int) -> Any:
        self.latest = self._results[k]
        return self.labels[k]

    def _submitted(self) -> Iterator[Any]:
        futures: list[Any] = []
        try:
            futures.extend(self.executor.submit(self.fn, *args) for args in self.jobs)
            if all(callable(getattr(f, "add_done_callback", None)) for f in futures):
                yield from self._as_finished(futures)
            else:
                for k, future in enumerate(futures):
                    self._results[k] = future.result()
                    yield self._finished(k)
        finally:  # a failure, or the caller stopped early: leave nothing running
            for future in futures:
                with contextlib.suppress(Exception):
                    if not future.done():
                        future.cancel()

    def _as_finished(self, futures: list[Any]) -> Iterator[Any]:
        finished: queue.SimpleQueue[int] = queue.SimpleQueue()
        for k, future in enumerate(futures):
            future.add_done_callback(lambda _, k=k: finished.put(k))
        waiting = set(range(len(futures)))  # unfinished jobs before the first failure
        failed = len(futures)
        while waiting:
            k = finished.get()
            if k not in waiting:
                continue
            waiting.discard(k)
            try:
                self._results[k] = futures[k].result()
            except Exception:
                failed = k  # earlier than any failure seen so far (k was waited for)
                waiting = {j for j in waiting if j < k}
                for later in futures[k + 1 :]:
                    later.cancel()
                continue
            yield self._finished(k)
        if failed < len(futures):
            futures[failed].result()  # raises the first failure in job order
