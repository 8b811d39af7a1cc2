"""Requests that arrive together, handed on as one group (vLLM's in-process batches, OpenAI batch jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

P = TypeVar("P")  # one pending request, carrying the future its caller awaits


class ArrivalWindow(Generic[P]):
    """Collects pending requests and hands them to `handle` as one group once none has arrived for `window_s`;
    requests arriving while `handle` runs form the next group. A request whose caller was cancelled (its
    future is done) is dropped before the hand-over."""

    def __init__(
        self, window_s: float, handle: Callable[[list[P]], Awaitable[None]], future_of: Callable[[P], asyncio.Future]
    ):
        self.window_s = window_s
        self._handle = handle
        self._future_of = future_of
        self._pending: list[P] = []
        self._last_arrival = 0.0
        self._flusher: asyncio.Task[None] | None = None

    def add(self, pending: P) -> None:
        """Queue one request; call from the running event loop."""
        self._pending.append(pending)
        self._last_arrival = asyncio.get_running_loop().time()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            while (wait := self._last_arrival + self.window_s - loop.time()) > 0:
                await asyncio.sleep(wait)
            group = [p for p in self._pending if not self._future_of(p).done()]
            self._pending = []
            if group:
                await self._handle(group)

    def cancel(self) -> None:
        """Stop handing on groups (the owner is closing)."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
