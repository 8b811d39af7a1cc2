"""Test double of the public vLLM API used by harness.backends.vllm_local (no GPU, no model).

`LLM` records its constructor arguments (`LLM.instances`) and every `chat` call (`LLM.calls`).
Generation is deterministic: the answer echoes the last user message, one token per word,
cut at `max_tokens` (finish_reason "length") or at a stop string (finish_reason "stop").
Set `LLM.fail_with` to an exception to make `chat` raise it.

As the real engine does, `chat` checks every prompt before generating anything and rejects the whole
call with vLLM's ValueError when one is longer than the `max_model_len` engine argument.
`LLM.thinking` (text) makes it answer like a reasoning model: `<think>{thinking}</think>` first, counted
against max_tokens.

Structured outputs (`SamplingParams.structured_outputs`, a StructuredOutputsParams): with `choice` the answer is
the first choice named in the last user message (else the first choice); with `regex` the first word of the
echo that matches it in full (else the double raises, as it cannot invent matching text).
Prompt logprobs (`SamplingParams.prompt_logprobs=k`): one entry per prompt token, None for the first, else a
dict token id -> Logprob holding the prompt's own token (plus the top-k) as vLLM returns them. A token's
logprob is `LLM.token_logprobs.get(word, -1.0)` (initially the JSON object in $VLLM_DOUBLE_TOKEN_LOGPROBS). `continue_final_message=True` renders the final assistant
message open (no end of turn, no new generation prompt) as chat templates do.
With $VLLM_DOUBLE_LOG set, every engine start and chat call (with its template flags and each prompt's
structured-output constraint and prompt_logprobs) is appended there as a JSON line (for tests that drive the CLI in a subprocess).
"""
from __future__ import annotations

import json
import os
import re
import zlib
from typing import Any

from vllm.logprobs import Logprob
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams

__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput"]


_TOKEN = re.compile(r"<\|[a-z]+\|>|[^\s<]+|<")  # chat-template markers are tokens of their own


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _token_id(word: str) -> int:
    return zlib.crc32(word.encode()) % 50_000


def _token_ids(text: str) -> list[int]:
    return [_token_id(word) for word in _words(text)]


class LLM:
    """Fake offline engine with the signatures of `vllm.LLM.__init__` and `vllm.LLM.chat`."""

    instances: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    fail_with: BaseException | None = None
    thinking: str | None = None
    token_logprobs: dict[str, float] = json.loads(os.environ.get("VLLM_DOUBLE_TOKEN_LOGPROBS") or "{}")

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model = model
        self.kwargs = kwargs
        LLM.instances.append({"model": model, **kwargs})
        _log({"event": "init", "model": model, **kwargs})
        self._request_counter = 0

    @classmethod
    def reset(cls) -> None:
        cls.instances, cls.calls, cls.fail_with, cls.thinking, cls.token_logprobs = [], [], None, None, {}

    def chat(
        self,
        messages: list[dict[str, Any]] | list[list[dict[str, Any]]],
        sampling_params: SamplingParams | list[SamplingParams] | None = None,
        use_tqdm: bool = True,
        lora_request: Any = None,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        LLM.calls.append({
            "messages": conversations,
            "sampling_params": sampling_params,
            "use_tqdm": use_tqdm,
            "chat_template": chat_template,
            "add_generation_prompt": add_generation_prompt,
            "continue_final_message": continue_final_message,
        })
        listed = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(conversations)
        _log({"event": "chat", "model": self.model, "prompts": len(conversations),
              "add_generation_prompt": add_generation_prompt, "continue_final_message": continue_final_message,
              "structured_outputs": [_constraint(p) for p in listed],
              "prompt_logprobs": [p.prompt_logprobs if p is not None else None for p in listed]})
        if LLM.fail_with is not None:
            raise LLM.fail_with
        if add_generation_prompt and continue_final_message:
            raise ValueError("continue_final_message cannot be True when add_generation_prompt is True.")
        if sampling_params is None:
            params = [SamplingParams()] * len(conversations)
        elif isinstance(sampling_params, SamplingParams):
            params = [sampling_params] * len(conversations)
        else:
            params = list(sampling_params)
            if len(params) != len(conversations):
                raise ValueError("The lengths of prompts and sampling_params must be the same.")
        if continue_final_message and any(c[-1]["role"] != "assistant" for c in conversations):
            raise ValueError("continue_final_message requires the final message to be from the assistant")
        max_model_len = self.kwargs.get("max_model_len")
        for conversation in conversations:
            length = len(_token_ids(_render(conversation, continue_final_message)))
            if max_model_len is not None and length > max_model_len:
                raise ValueError(
                    f"The decoder prompt (length {length}) is longer than the maximum model length of "
                    f"{max_model_len}. Make sure that `max_model_len` is no smaller than the number of text tokens.")
        return [self._generate(conv, p, continue_final_message) for conv, p in zip(conversations, params)]

    def _generate(self, conversation: list[dict[str, Any]], params: SamplingParams, continuing: bool) -> RequestOutput:
        prompt = _render(conversation, continuing)
        last_user = next((m["content"] for m in reversed(conversation) if m["role"] == "user"), "")
        thought = f"<think> {LLM.thinking} </think> " if LLM.thinking is not None else ""
        words = f"{thought}echo: {last_user}".split()
        constraint = params.structured_outputs
        if constraint is not None and constraint.choice is not None:
            named = [c for c in constraint.choice if c in last_user]
            words = (named or constraint.choice)[0].split()
        elif constraint is not None and constraint.regex is not None:
            matching = [w for w in words if re.fullmatch(constraint.regex, w)]
            if not matching:
                raise NotImplementedError(f"the double cannot answer regex {constraint.regex!r} for this prompt")
            words = matching[:1]
        elif constraint is not None:
            raise NotImplementedError("the double supports structured outputs by choice or regex only")
        finish_reason, stop_reason = "stop", None
        if params.max_tokens is not None and len(words) > params.max_tokens:
            words, finish_reason = words[: params.max_tokens], "length"
        text = " ".join(words)
        for stop in params.stop or []:
            if stop in text:
                text, finish_reason, stop_reason = text[: text.index(stop)], "stop", stop
        outputs = [
            CompletionOutput(index=i, text=text, token_ids=_token_ids(text), cumulative_logprob=None,
                             logprobs=None, finish_reason=finish_reason, stop_reason=stop_reason)
            for i in range(params.n)
        ]
        request_id = str(self._request_counter)
        self._request_counter += 1
        return RequestOutput(request_id=request_id, prompt=prompt, prompt_token_ids=_token_ids(prompt),
                             prompt_logprobs=_prompt_logprobs(prompt, params.prompt_logprobs), outputs=outputs,
                             finished=True)


def _prompt_logprobs(prompt: str, k: int | None) -> list[dict[int, Logprob] | None] | None:
    """vLLM's shape: None for the first token, then {token id: Logprob} with the prompt's token (its rank among
    the double's candidates) and the top-k candidates (here: the other words of LLM.token_logprobs)."""
    if k is None:
        return None
    entries: list[dict[int, Logprob] | None] = [None]
    ranked = sorted(LLM.token_logprobs.items(), key=lambda item: -item[1])
    for word in _words(prompt)[1:]:
        logprob = LLM.token_logprobs.get(word, -1.0)
        rank = 1 + sum(lp > logprob for _, lp in ranked)
        entry = {_token_id(word): Logprob(logprob=logprob, rank=rank, decoded_token=word)}
        for position, (other, lp) in enumerate(ranked[:k], start=1):
            entry.setdefault(_token_id(other), Logprob(logprob=lp, rank=position, decoded_token=other))
        entries.append(entry)
    return entries


def _constraint(params: SamplingParams | None) -> dict[str, Any] | None:
    """The constraint kinds a SamplingParams sets (for the log)."""
    constraint = params.structured_outputs if params is not None else None
    if constraint is None:
        return None
    return {k: v for k, v in vars(constraint).items() if v is not None and v is not False}


def _render(conversation: list[dict[str, Any]], continuing: bool = False) -> str:
    """The double's chat template; with `continuing`, the final message stays open (continue_final_message)."""
    if continuing:
        *before, last = conversation
        return "".join(f"<|{m['role']}|>{m['content']}\n" for m in before) + f"<|{last['role']}|>{last['content']}"
    return "".join(f"<|{m['role']}|>{m['content']}\n" for m in conversation) + "<|assistant|>"


def _log(event: dict[str, Any]) -> None:
    path = os.environ.get("VLLM_DOUBLE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
