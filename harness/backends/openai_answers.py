"""Choice questions on OpenAI-compatible servers: the request fields of the constrained and logprob answer
modes, the server dialects (tried in turn when a server answers 400), and reading the answers back.

Constrained forms, in the order tried (a vLLM server, `server: vllm`, starts with its own fields):
- `json_schema`: `response_format: {type: json_schema, json_schema: {name, strict, schema}}` (OpenAI, vLLM);
- `json_object`: `response_format: {type: json_object, schema}` (llama.cpp's server);
- `structured_outputs`: `structured_outputs: {choice | regex | json}` (vLLM >= 0.11);
- `guided`: `guided_choice` / `guided_regex` / `guided_json` (vLLM before 0.12).
The first form the endpoint accepts is kept for the rest of the run (on the run's BackendResources) and
recorded in the manifest. Logprob mode asks for `logprobs` with `top_logprobs` and scores each option from
them (see harness.backends.choices.top_logprob_scores).
"""

from __future__ import annotations

import json
from typing import Any

from harness.backends.base import BackendResources
from harness.backends.choices import best_option, constraint, scored_mode, top_logprob_scores
from harness.types import Choice, Completion, Request

JSON_FORMS = ("json_schema", "json_object")
OPENAI_ORDER = ("json_schema", "json_object", "structured_outputs", "guided")
VLLM_ORDER = ("structured_outputs", "guided", "json_schema", "json_object")
TOP_LOGPROBS = 20  # the most the OpenAI API returns
LOGPROB_FORM = f"top_logprobs={TOP_LOGPROBS} (first diverging token)"


def constrained_fields(form: str, choice: Choice) -> dict[str, Any]:
    """The request fields that restrict the answer to `choice` in one server dialect."""
    if form == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": choice.json_schema()},
            }
        }
    if form == "json_object":
        return {"response_format": {"type": "json_object", "schema": choice.json_schema()}}
    kind, value = constraint(choice)
    if form == "structured_outputs":
        return {"structured_outputs": {kind: value}}
    return {f"guided_{kind}": value}


class AnswerDialects:
    """Which constrained form an endpoint speaks: the first accepted one, remembered for the run."""

    def __init__(self, endpoint: str, server: str | None):
        self.endpoint = endpoint
        self.order = VLLM_ORDER if server == "vllm" else OPENAI_ORDER
        self.rejected: set[str] = set()
        self.resources: BackendResources | None = None

    def learnt(self) -> dict[str, str]:
        """Answer mode -> the form that worked on this endpoint in this run."""
        return self.resources.answer_forms.get(self.endpoint, {}) if self.resources is not None else {}

    def form(self) -> str | None:
        """The constrained form to send next (None: the server rejected every form)."""
        settled = self.learnt().get("constrained")
        if settled is not None:
            return settled
        return next((form for form in self.order if form not in self.rejected), None)

    def fields(self, request: Request) -> dict[str, Any]:
        """Extra body fields for `request` (none for free answers)."""
        mode = scored_mode(request)
        if mode == "logprob":
            return {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        form = self.form()
        if mode != "constrained" or request.choice is None or form is None:
            return {}
        return constrained_fields(form, request.choice)

    def reject(self, request: Request, status: int | None) -> str | None:
        """After an HTTP 400/422 to a constrained request sent in a form not yet known to work: drop that form
        and return it (the caller retries with the next); None when there is no other form to try."""
        form = self.form()
        if (
            status not in (400, 422)
            or scored_mode(request) != "constrained"
            or form is None
            or "constrained" in self.learnt()
        ):
            return None
        self.rejected.add(form)
        return form if self.form() is not None else None

    def accepted(self, request: Request) -> None:
        """Remember the form a successful request used, for the rest of the run."""
        mode = scored_mode(request)
        if mode == "free" or self.resources is None:
            return
        learnt = self.resources.answer_forms.setdefault(self.endpoint, {})
        if mode == "logprob":
            learnt.setdefault("logprob", LOGPROB_FORM)
        elif (form := self.form()) is not None:
            learnt.setdefault("constrained", form)


def read_answer(
    request: Request, completion: Completion, logprobs: list[dict[str, Any]] | None, form: str | None
) -> Completion:
    """The completion with the answer the mode gives: the option inside a JSON answer object; in logprob mode
    the best-scored option with every option's logprob (the raw text stays when no option was among the top
    logprobs)."""
    mode = scored_mode(request)
    choice = request.choice
    if mode == "free" or choice is None:
        return completion
    if mode == "logprob" and choice.options is not None:
        scores = top_logprob_scores(choice.options, logprobs or [])
        if all(score is None for score in scores.values()):
            return completion.model_copy(update={"answer_mode": "logprob", "option_logprobs": scores})
        return completion.model_copy(
            update={"text": best_option(scores), "answer_mode": "logprob", "option_logprobs": scores}
        )
    text = completion.text
    if form in JSON_FORMS and choice.schema_ is None:  # options and regexes come wrapped in {"answer": ...}
        try:
            answer = json.loads(text).get("answer")
        except (ValueError, AttributeError):
            answer = None
        text = answer if isinstance(answer, str) else text
    return completion.model_copy(update={"text": text, "answer_mode": "constrained"})
