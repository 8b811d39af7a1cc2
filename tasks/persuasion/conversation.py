"""Stage 2: the persuader (model under test) and the persuadee (simulator) take turns until a stop rule.

Turn k is one persuader message (exchange role `model`, purpose `turn-k`) and the persuadee's reply (role
`simulator`, same purpose). The persuadee greets first with a fixed line. Stop at the first acceptance,
when the rejections exceed `max_rejects`, or after `max_turns` turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.types import Exchange, GenerateConfig, Message
from harness_tasks.persuasion.prompts import GREETING, Decision, has_request, parse_decision

if TYPE_CHECKING:
    from harness.context import SampleContext

PERSUADER, PERSUADEE = "model", "simulator"
Outcome = Literal["accepted", "rejected", "max_turns", "unfinished"]


@dataclass(frozen=True)
class Turn:
    persuader: str
    persuadee: str

    @property
    def request(self) -> bool:
        return has_request(self.persuader)

    @property
    def decision(self) -> Decision | None:
        return parse_decision(self.persuadee)


def persuader_view(system: str, turns: list[Turn], greeting: str = GREETING) -> list[Message]:
    """The persuader's chat: it answers the greeting, the persuadee's lines are user turns."""
    messages = [Message(role="system", content=system), Message(role="user", content=greeting)]
    for turn in turns:
        messages += [Message(role="assistant", content=turn.persuader), Message(role="user", content=turn.persuadee)]
    return messages


def persuadee_view(system: str, turns: list[Turn], persuader_line: str) -> list[Message]:
    """The persuadee's chat: the persuader's lines are user turns (the greeting is not repeated, as upstream)."""
    messages = [Message(role="system", content=system)]
    for turn in turns:
        messages += [Message(role="user", content=turn.persuader), Message(role="assistant", content=turn.persuadee)]
    return [*messages, Message(role="user", content=persuader_line)]


def should_stop(turns: list[Turn], max_turns: int, max_rejects: int) -> bool:
    return outcome(turns, max_turns, max_rejects) != "unfinished"


def outcome(turns: list[Turn], max_turns: int, max_rejects: int) -> Outcome:
    """How a conversation ended: the first acceptance, more than `max_rejects` rejections, or the turn limit."""
    rejects = 0
    for index, turn in enumerate(turns, start=1):
        decision = turn.decision
        if decision == "accept":
            return "accepted"
        rejects += decision == "reject"
        if rejects > max_rejects:
            return "rejected"
        if index >= max_turns:
            return "max_turns"
    return "unfinished"


async def converse(
    ctx: "SampleContext",
    persuader_system: str,
    persuadee_system: str,
    *,
    max_turns: int,
    max_rejects: int,
    config: GenerateConfig,
    greeting: str = GREETING,
) -> list[Turn]:
    """Run the conversation; every call is recorded in the sample's exchanges."""
    turns: list[Turn] = []
    while not should_stop(turns, max_turns, max_rejects):
        purpose = f"turn-{len(turns) + 1}"
        said = await ctx.generate(
            persuader_view(persuader_system, turns, greeting), role=PERSUADER, purpose=purpose, config=config
        )
        reply = await ctx.generate(
            persuadee_view(persuadee_system, turns, said.text), role=PERSUADEE, purpose=purpose, config=config
        )
        turns.append(Turn(said.text, reply.text))
    return turns


def stored_turns(exchanges: list[Exchange]) -> list[Turn]:
    """The completed turns of a recorded conversation, in order."""
    lines: dict[tuple[str, int], str] = {}
    for ex in exchanges:
        if (
            ex.role in (PERSUADER, PERSUADEE)
            and ex.purpose.startswith("turn-")
            and ex.completion is not None
            and ex.error is None
        ):
            lines[(ex.role, int(ex.purpose[5:]))] = ex.completion.text
    turns = []
    index = 1
    while (PERSUADER, index) in lines and (PERSUADEE, index) in lines:
        turns.append(Turn(lines[(PERSUADER, index)], lines[(PERSUADEE, index)]))
        index += 1
    return turns
