"""LLM judges: render a rubric template, ask every judge of the panel, parse, re-ask once, record all.

The one entry point for tasks is `run_judges`; `panel.py` combines the verdicts into one Score.

Example (a task's `score` hook asking each judge for a 1-5 rating)::

    from harness.judging.llm_judge import run_judges
    from harness.judging.panel import majority, panel_score
    from harness.judging.parsers import ParseError

    def parse_rating(text: str) -> int:
        if text.strip() not in {"1", "2", "3", "4", "5"}:
            raise ParseError(f"expected one digit 1-5, got {text.strip()[:40]!r}")
        return int(text.strip())

    verdicts = await run_judges(
        ctx, name="helpfulness", template="helpfulness",          # rubrics/helpfulness.j2
        variables={"prompt": prompt, "response": response},       # data only ever as variables
        parse=parse_rating, parser_version="1",
    )
    rating = majority([v.verdict for v in verdicts])              # None when every judge failed
    score = panel_score("helpfulness", verdicts, value=rating, label=str(rating))

Each judge (`--judge a,b,c` -> roles judge, judge2, judge3) is called concurrently through its own
RoleClient (own concurrency limit, token tally, cache entries keyed also by the template hash). An
answer the parser rejects gets exactly one re-ask: the bad answer plus a short message naming the
parse error. A judge that still fails yields a verdict with `error` = "parse", "refused" (it declined
to grade, or a content filter stopped it) or "api" (the call failed), and a `detail`; such a verdict is
an abstention, never a zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from harness.errors import GenerationFailed, UserError
from harness.judging.parsers import ParseError
from harness.judging.refusal_rules import classify_refusal
from harness.judging.templates import JudgeTemplate, load_template
from harness.secrets import redact
from harness.types import Choice, GenerateConfig, Message

if TYPE_CHECKING:
    from harness.context import SampleContext

JudgeErrorKind = Literal["parse", "refused", "api"]

REASK = (
    "Your answer could not be read: {problem}. Reply again with only the answer, exactly in the format requested above."
)


class JudgeVerdict(BaseModel):
    """One judge's answer to one judge prompt: who judged, with what, what it said and meant."""

    role: str  # judge, judge2, ...
    model: str  # the judge's model spec
    template: str
    template_hash: str  # SHA-256 of the template source
    parser_version: str
    config: dict[str, Any] = Field(default_factory=dict)  # generation config sent
    outputs: list[str] = Field(default_factory=list)  # raw output of each attempt (a re-ask adds one)
    answer_mode: str = "free"  # how the judge answered (free, constrained, logprob)
    option_probs: dict[str, float] | None = None  # logprob mode: each allowed verdict's probability
    verdict: Any = None  # the parsed answer; None on error
    error: JudgeErrorKind | None = None
    detail: str | None = None
    cached: bool = False  # every attempt was served from the response cache

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_judges(
    ctx: "SampleContext",
    *,
    name: str,
    template: str,
    variables: dict[str, Any],
    parse: Callable[[str], Any],
    parser_version: str,
    config: GenerateConfig | None = None,
    choice: Choice | None = None,
) -> list[JudgeVerdict]:
    """Ask every judge of the run to grade with `rubrics/<template>.j2`; one verdict per judge, in order.

    `name` labels the exchanges (purpose `judge:<name>`); `parse` turns raw text into the verdict or
    raises ParseError; `config` overrides the judges' generation settings (default temperature 0); `choice`
    states the verdict's allowed answers, so a judge in constrained or logprob mode can answer with them.
    Raises UserError when the run has no judge.
    """
    require_judges(ctx, name)
    tmpl = load_template(template)
    prompt = tmpl.render(variables)
    asks = [_ask(ctx, role, name, tmpl, prompt, parse, parser_version, config, choice) for role in ctx.judges]
    return list(await asyncio.gather(*asks))


def require_judges(ctx: "SampleContext", what: str) -> None:
    """UserError unless the run has at least one judge model."""
    if not ctx.judges:
        raise UserError(f"task {ctx.task}: '{what}' needs a judge model; pass --judge <spec> (or a panel a,b,c)")


async def _ask(
    ctx: "SampleContext",
    role: str,
    name: str,
    tmpl: JudgeTemplate,
    prompt: str,
    parse: Callable[[str], Any],
    parser_version: str,
    config: GenerateConfig | None,
    choice: Choice | None,
) -> JudgeVerdict:
    verdict = JudgeVerdict(
        role=role,
        model=ctx.roles[role].backend.spec,
        template=tmpl.name,
        template_hash=tmpl.sha256,
        parser_version=parser_version,
        config=ctx.effective_config(role, config).model_dump(exclude_none=True),
        cached=True,
    )
    messages = [Message(role="user", content=prompt)]
    for attempt in ("judge", "reask"):
        purpose = f"judge:{name}" if attempt == "judge" else f"judge:{name}:reask"
        try:
            completion = await ctx.generate(
                messages,
                role=role,
                purpose=purpose,
                config=config,
                cache_extra={"template": tmpl.sha256},
                choice=choice,
            )
        except GenerationFailed as exc:
            return verdict.model_copy(update={"error": "api", "detail": redact(str(exc)), "cached": False})
        verdict.outputs.append(completion.text)
        verdict.answer_mode, verdict.option_probs = completion.answer_mode, completion.option_probs
        verdict.cached = verdict.cached and completion.cached
        if completion.finish_reason == "content_filter":
            return verdict.model_copy(update={"error": "refused", "detail": "stopped by the provider's content filter"})
        try:
            return verdict.model_copy(update={"verdict": parse(completion.text)})
        except ParseError as exc:
            problem = str(exc)
        messages = [
            *messages,
            Message(role="assistant", content=completion.text),
            Message(role="user", content=REASK.format(problem=problem)),
        ]
    text = verdict.outputs[-1]
    if text.strip() and classify_refusal(text) != "full_compliance":
        return verdict.model_copy(update={"error": "refused", "detail": f"the judge declined to grade: {problem}"})
    return verdict.model_copy(update={"error": "parse", "detail": problem})
