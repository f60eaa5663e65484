"""Entering a context manager in a thread while other work goes on: a demo starts its service this way (seconds of
imports and model loading on one core) while it trains the next candidate or imports what it needs next on the
other.

    with in_background(service_process(command, port, log_path=log)) as starting:
        ...                      # anything that does not need the service
        url = starting.result()  # waits for the start (its error, if it failed, is raised here)
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def in_background(manager: AbstractContextManager[T]) -> Iterator[Future[T]]:
    """Enter ``manager`` in a thread (``future.result()``: what it yields, once it has, or its error) while the
    block runs; exit it when the block ends (after its start finished, whatever the block did)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="background-start") as pool:
        entered = pool.submit(manager.__enter__)
        try:
            yield entered
        finally:
            if entered.exception() is None:  # waits for the start; a start that failed has nothing to exit
                manager.__exit__(None, None, None)
