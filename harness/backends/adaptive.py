"""`--max-connections auto`: a concurrency limit that follows the server (additive increase, multiplicative
decrease, as TCP does): halved when the server answers 429, one higher after a full limit's worth of
successes in a row."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)

AUTO_START = 8
AUTO_FLOOR = 1
AUTO_CEILING = 256


class AdaptiveLimit:
    """An async concurrency limit that adapts: `slot()` holds one of `limit` places while a request runs.

    Only the first 429 of requests started under the same limit lowers it: the others were sent before
    the server could see the lower limit, so they say nothing new (without this, one burst of 429s would
    drive the limit to the floor)."""

    def __init__(self, name: str, start: int = AUTO_START, floor: int = AUTO_FLOOR, ceiling: int = AUTO_CEILING):
        self.name = name
        self.limit = start
        self.floor, self.ceiling = floor, ceiling
        self.lowest = self.highest = start
        self.decreases = self.increases = 0
        self._in_flight = 0
        self._successes = 0
        self._epoch = 0  # bumped by every decrease
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one place while a request runs; yields the request's epoch, to pass to `overloaded()` when
        the server answers 429. A block that ends without an exception counts as a success."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        try:
            yield self._epoch
            self._succeeded()
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self._set(self.limit + 1, "increase:", f"{self.limit} requests in a row succeeded")
            self.increases += 1

    def overloaded(self, epoch: int) -> None:
        """The server answered 429 to a request started in `epoch`: halve the limit (once per epoch)."""
        if epoch != self._epoch:
            return  # started before the last decrease
        self._epoch += 1
        if self.limit > self.floor:
            self._set(max(self.floor, self.limit // 2), "decrease:", "HTTP 429 from the server")
            self.decreases += 1

    def _set(self, limit: int, change: str, why: str) -> None:
        """Move the limit to `limit`, logging the change and why."""
        # warning level: shown without any logging setup, since the user asked for an adaptive limit
        log.warning("%s: connections %d -> %d (%s %s)", self.name, self.limit, limit, change, why)
        self.limit = limit
        self._successes = 0
        self.lowest, self.highest = min(self.lowest, limit), max(self.highest, limit)

    def report(self) -> dict[str, Any]:
        """The limit now and how it moved (for the manifest and the end-of-run line)."""
        return {
            "limit": self.limit,
            "lowest": self.lowest,
            "highest": self.highest,
            "decreases": self.decreases,
            "increases": self.increases,
        }
