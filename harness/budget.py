"""--budget-usd: refuse to start a request whose projected cost would take the run's spend past the budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.costs import Price, completion_usd, usd
from harness.errors import BudgetExhausted
from harness.types import Completion, Record, Request, Usage

CHARS_PER_TOKEN = 4  # the prompt-length estimate of a role's first request, before any answer was seen


@dataclass
class RoleSpend:
    """One role's price and its paid requests so far (earlier sessions of the run included)."""

    price: Price | None
    requests: int = 0
    usd: float = 0.0
    costliest: float = 0.0  # the most one request cost


@dataclass
class Budget:
    """The run's spending limit, shared by every role. A request is projected to cost as much as the role's
    costliest request so far (before its first answer: the prompt's length in tokens, at 4 characters per
    token, for input and as many again for output); it is refused when the
    spend so far plus the projections of the requests in flight plus its own would exceed the limit.
    After the first refusal no request starts any more. The spend can pass the limit only by what requests
    cost beyond their projection (a request costlier than every earlier one of its role)."""

    limit_usd: float
    roles: dict[str, RoleSpend]
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    stopped: bool = False
    _in_flight: dict[int, float] = field(default_factory=dict)

    @classmethod
    def for_run(cls, limit_usd: float, prices: dict[str, Price | None], records: list[Record]) -> Budget:
        """A budget over the roles' `prices`, counting what the run's finished `records` already spent."""
        budget = cls(limit_usd, {role: RoleSpend(price) for role, price in prices.items()})
        for record in records:
            for exchange in record.exchanges:
                spend = budget.roles.get(exchange.role)
                if spend is not None and exchange.completion is not None and not exchange.completion.cached:
                    budget._count(spend, completion_usd(exchange.completion, spend.price))
        return budget

    def _count(self, spend: RoleSpend, cost: float) -> None:
        spend.requests += 1
        spend.usd += cost
        spend.costliest = max(spend.costliest, cost)
        self.spent_usd += cost

    def projected(self, role: str, request: Request, batch: bool) -> float:
        """The cost expected of `request` to `role` (see the class docstring)."""
        spend = self.roles.get(role)
        if spend is None or spend.price is None:
            return 0.0
        if spend.requests:
            return spend.costliest
        prompt = sum(len(m.content) for m in request.messages) // CHARS_PER_TOKEN + 1
        return usd(Usage(prompt_tokens=prompt, completion_tokens=prompt), spend.price, batch)

    def reserve(self, role: str, request: Request, batch: bool = False) -> int:
        """Book the projected cost of a request about to start; BudgetExhausted if it does not fit.
        Returns the booking to settle() or release()."""
        cost = self.projected(role, request, batch)
        if self.stopped or self.spent_usd + self.reserved_usd + cost > self.limit_usd:
            self.stopped = True
            raise BudgetExhausted(
                f"budget of ${self.limit_usd:g} reached: spent ${self.spent_usd:.4f}, "
                f"${self.reserved_usd:.4f} in flight, next {role} request ~${cost:.4f}"
            )
        booking = id(request)
        self._in_flight[booking] = cost
        self.reserved_usd += cost
        return booking

    def settle(self, booking: int, role: str, completion: Completion | None) -> None:
        """Replace a booking by what the request actually cost (nothing, when it failed: `completion` None)."""
        self.reserved_usd -= self._in_flight.pop(booking, 0.0)
        spend = self.roles.get(role)
        if spend is not None and completion is not None:
            self._count(spend, completion_usd(completion, spend.price))
