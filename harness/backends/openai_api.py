"""`openai/<model>`: any OpenAI-compatible chat-completions server through the official async client."""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from harness.backends.adaptive import AdaptiveLimit
from harness.backends.base import Backend, BackendOptions, BackendResources, split_reasoning
from harness.backends.openai_answers import AnswerDialects, read_answer
from harness.backends.openai_batch import BatchCollector
from harness.errors import BackendError, UserError
from harness.secrets import public_url, redact, register_secret_env, register_secret_url
from harness.types import ALL_ANSWER_MODES, Completion, GenerateConfig, Request, Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from tenacity import RetryCallState

log = logging.getLogger(__name__)

RETRY_BASE_ENV = "HARNESS_RETRY_BASE_S"
DEFAULT_RETRY_BASE_S = 1.0
DEFAULT_RETRY_MAX_S = 60.0
DEFAULT_ENDPOINT = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # local servers (vLLM, llama.cpp, Ollama) ignore the key
TRANSIENT_STATUSES = {408, 409, 429}  # plus every 5xx
PARAMS = ("temperature", "top_p", "max_tokens", "seed", "stop", "n")
# Reasoning models (o1, o3, o4-mini, gpt-5, ...): named like this unless the role sets `reasoning`.
REASONING_NAME = re.compile(r"(?:^|/)(?:o[1-9]\d*(?:-|$)|gpt-5)", re.IGNORECASE)
REASONING_UNSUPPORTED = ("temperature", "top_p", "stop")  # left out for reasoning models
# A parameter the server rejects is sent under its other name if it has one, else left out.
RENAMES = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
UNSUPPORTED_CODES = {"unsupported_parameter", "unsupported_value"}


def is_reasoning_model(name: str) -> bool:
    """The documented name rule: o1/o3/o4-mini/... (o + digit) and gpt-5* models reason."""
    return REASONING_NAME.search(name) is not None


class MalformedResponse(Exception):
    """The server answered 200 but the body is unusable (bad JSON, no choices); worth retrying."""


class OpenAIBackend(Backend):
    """Chat completions with tenacity retries (exponential backoff + jitter, honours Retry-After)."""

    kind = "openai"
    answer_modes = ALL_ANSWER_MODES

    def __init__(
        self,
        model: str,
        options: BackendOptions | None = None,
        *,
        retry_base_s: float | None = None,
        retry_max_s: float = DEFAULT_RETRY_MAX_S,
    ):
        """Backoff starts at `retry_base_s` (default: $HARNESS_RETRY_BASE_S or 1s), doubling up to `retry_max_s`."""
        super().__init__(model, options)
        self.base_url = self.options.base_url or os.environ.get("OPENAI_BASE_URL") or None
        register_secret_url(self.base_url)
        self.retry_base_s = (
            retry_base_s if retry_base_s is not None else _env_float(RETRY_BASE_ENV, DEFAULT_RETRY_BASE_S)
        )
        self.retry_max_s = retry_max_s
        self.reasoning = self.options.reasoning if self.options.reasoning is not None else is_reasoning_model(model)
        self._rejected: set[str] = set()  # parameters the server answered 400 'unsupported' to
        self._dialects = AnswerDialects(self.endpoint(), self.options.server)  # constrained/logprob request forms
        self._dialects.resources = self.resources
        self._api_key()  # fail early when the key is missing
        self._adaptive = AdaptiveLimit(self.spec) if self.options.max_connections == "auto" else None
        self._batch = BatchCollector(self) if self.options.batch else None

    @property
    def batches_requests(self) -> bool:  # type: ignore[override]
        """With --batch, every sample is in flight at once, so a stage's requests form one batch."""
        return self._batch is not None

    def max_in_flight(self) -> int | None:
        return None if self._batch is not None else super().max_in_flight()

    def connection_report(self) -> dict[str, Any] | None:
        return self._adaptive.report() if self._adaptive is not None else None

    def share(self, resources: BackendResources) -> None:
        super().share(resources)
        self._dialects.resources = resources

    def answer_forms(self) -> dict[str, str]:
        return dict(self._dialects.learnt())

    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model,
            "base_url": public_url(self.base_url) if self.base_url else None,
        }
        if self.reasoning:
            identity["reasoning"] = True  # requests are shaped differently
        return identity

    def endpoint(self) -> str:
        return public_url(self.base_url) if self.base_url else DEFAULT_ENDPOINT

    def _api_key(self) -> str:
        env = self.options.api_key_env
        register_secret_env(env)
        key = os.environ.get(env)
        if key:
            return key
        if self.base_url:
            return PLACEHOLDER_KEY
        raise UserError(
            f"no API key for openai/{self.model}: set ${env} (or choose another variable with --api-key-env, "
            "--judge-api-key-env or --simulator-api-key-env), or pass --base-url for a local OpenAI-compatible server"
        )

    def _get_client(self) -> AsyncOpenAI:
        """One AsyncOpenAI (one connection pool) per endpoint and key, shared by every role that calls it."""
        from openai import AsyncOpenAI

        def create() -> AsyncOpenAI:
            # A query string in the URL (e.g. ?api-key=...) goes on every request, after the path.
            base_url, _, query = (self.base_url or "").partition("?")
            return AsyncOpenAI(
                api_key=self._api_key(),
                base_url=base_url or None,
                max_retries=0,
                timeout=self.options.timeout_s,
                default_query=dict(urllib.parse.parse_qsl(query)),
            )

        key = ("openai", self.options.api_key_env, self.base_url, self.options.timeout_s)
        return self.resources.shared(key, create, lambda client: client.close())

    async def generate(self, request: Request) -> Completion:
        """One completion; a 400 'unsupported parameter/value' answer is retried once without that parameter
        (which this backend then leaves out of later requests too)."""
        if self._batch is not None:
            return await self._batch.submit(request)
        retries: list[str] = []
        started = time.perf_counter()
        while True:
            try:
                completion = await self._attempts(request, retries)
                break
            except Exception as exc:  # noqa: BLE001 - sorted out by _failure
                rejected = self._rejected_parameter(exc, request.config)
                form = self._dialects.reject(request, getattr(exc, "status_code", None)) if rejected is None else None
                if form is not None:
                    log.warning(
                        "openai/%s: the server does not accept constrained answers as '%s' (%s); trying the next form",
                        self.model,
                        form,
                        _server_message(exc),
                    )
                    continue
                if rejected is None:
                    raise self._failure(exc, retries) from None
                self._rejected.add(rejected)
                log.warning(
                    "openai/%s: the server does not accept '%s' (%s); retrying without it",
                    self.model,
                    rejected,
                    _server_message(exc),
                )
        return completion.model_copy(update={"latency_s": time.perf_counter() - started, "retries": retries})

    async def _attempts(self, request: Request, retries: list[str]) -> Completion:
        """One call with tenacity retries of transient failures; each retried attempt is noted in `retries`."""
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        def note_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            retries.append(f"attempt {len(retries) + 1}: {self._describe(exc)}, waited {wait:.2f}s")
            log.debug("openai/%s retrying: %s", self.model, retries[-1])

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.options.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=note_retry,
            reraise=True,
        ):
            with attempt:
                completion = await self._limited_call(request)
        return completion

    async def _limited_call(self, request: Request) -> Completion:
        """`_call`, within the adaptive connection limit when there is one (a 429 lowers it)."""
        if self._adaptive is None:
            return await self._call(request)
        from openai import RateLimitError

        async with self._adaptive.slot() as epoch:
            try:
                return await self._call(request)
            except RateLimitError:
                self._adaptive.overloaded(epoch)
                raise

    def _failure(self, exc: Exception, retries: list[str]) -> Exception:
        """The exception to raise for a call that failed for good: a BackendError, or `exc` itself for a bug."""
        permanent = not _is_transient(exc)
        if permanent and not _is_api_error(exc):
            return exc  # a bug, not a failed request
        message = self._describe(exc, hint=True)
        if not permanent:
            message += f" (gave up after {len(retries) + 1} attempts)"
        return BackendError(f"openai/{self.model}: {message}", retries=retries, permanent=permanent)

    def body_params(self, config: GenerateConfig) -> dict[str, Any]:
        """The generation parameters sent: reasoning models get max_completion_tokens and none of the
        sampling knobs they reject; parameters the server rejected before are renamed or left out."""
        params = {name: getattr(config, name) for name in PARAMS if getattr(config, name) is not None}
        if self.reasoning:
            params = {k: v for k, v in params.items() if k not in REASONING_UNSUPPORTED}
            if "max_tokens" in params:
                params["max_completion_tokens"] = params.pop("max_tokens")
        for name in self._rejected & set(params):
            value = params.pop(name)
            other = RENAMES.get(name)
            if other and other not in self._rejected:
                params[other] = value
        return params

    def _rejected_parameter(self, exc: BaseException, config: GenerateConfig) -> str | None:
        """The parameter a 400 'unsupported parameter/value' answer names, if we sent it and it is new."""
        from openai import APIStatusError

        if not isinstance(exc, APIStatusError) or exc.status_code != 400 or not isinstance(exc.body, dict):
            return None
        error = exc.body.get("error", exc.body)
        if not isinstance(error, dict) or error.get("code") not in UNSUPPORTED_CODES:
            return None
        param = error.get("param")
        return param if param in self.body_params(config) and param not in self._rejected else None

    async def _call(self, request: Request) -> Completion:
        """One HTTP attempt; raises the client's errors or MalformedResponse."""
        from openai.types.chat import ChatCompletion

        try:
            response = await self._get_client().post(
                "/chat/completions", body=self.chat_body(request), cast_to=ChatCompletion
            )
        except json.JSONDecodeError as exc:  # the client does not wrap invalid JSON bodies
            raise MalformedResponse(f"invalid JSON in response ({exc.msg})") from None
        return self.completion_of(request, response)

    def chat_body(self, request: Request) -> dict[str, Any]:
        """The JSON body of a chat-completions request."""
        return {
            "model": self.model,
            "messages": [m.model_dump() for m in request.messages],
            **self.body_params(request.config),
            **self._dialects.fields(request),
        }

    def completion_of(self, request: Request, response: Any) -> Completion:
        """The Completion of `request` from a parsed chat-completions response (a choice question's answer read in
        its answer mode); MalformedResponse if it is not one."""
        from openai.types.chat import ChatCompletion

        if not isinstance(response, ChatCompletion):  # non-JSON content type: the client returns raw text
            raise MalformedResponse("response is not a chat completion")
        if not response.choices:
            raise MalformedResponse("response has no choices")
        choice = response.choices[0]
        usage = response.usage
        answer, thinking = split_reasoning(choice.message.content or "", self.reasoning)
        served = getattr(choice.message, "reasoning_content", None) or getattr(choice.message, "reasoning", None)
        completion = Completion(
            text=answer or choice.message.refusal or "",
            reasoning=served if isinstance(served, str) and served else thinking,
            model=response.model or self.model,
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                reasoning_tokens=reasoning_tokens(usage),
            ),
            finish_reason=choice.finish_reason,
        )
        return self._chosen(request, completion, choice)

    def _chosen(self, request: Request, completion: Completion, choice: Any) -> Completion:
        """A choice question's answer read in the request's answer mode; the form that worked is remembered."""
        if request.choice is None:
            return completion
        tokens = choice.logprobs.content if choice.logprobs is not None and choice.logprobs.content else None
        answer = read_answer(
            request, completion, [t.model_dump() for t in tokens] if tokens else None, self._dialects.form()
        )
        self._dialects.accepted(request)
        return answer

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, but at least the server's Retry-After (capped)."""
        from tenacity import wait_exponential_jitter

        backoff = wait_exponential_jitter(multiplier=self.retry_base_s, max=self.retry_max_s, jitter=self.retry_base_s)
        exc = state.outcome.exception() if state.outcome else None
        return max(backoff(state), _retry_after(exc, self.options.max_retry_after_s))

    def _describe(self, exc: BaseException | None, hint: bool = False) -> str:
        """One redacted line: status + server message (+ what to check, for permanent errors)."""
        from openai import APIConnectionError, APIStatusError, APITimeoutError

        if isinstance(exc, APIStatusError):
            text = f"HTTP {exc.status_code} {_server_message(exc)}"
            tip = _HINTS.get(exc.status_code) if hint else None
            if tip:
                text += " — " + tip.format(env=self.options.api_key_env)
        elif isinstance(exc, APITimeoutError):
            text = f"timed out after {self.options.timeout_s:g}s"
        elif isinstance(exc, APIConnectionError):
            cause = exc.__cause__
            where = public_url(self.base_url) if self.base_url else "the OpenAI API"
            if _refused(exc):
                text = f"connection refused by {where} (is the server running on that port?)"
            else:
                text = f"connection error to {where}" + (f" ({type(cause).__name__})" if cause else "")
        elif isinstance(exc, MalformedResponse):
            text = f"malformed response: {exc}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return redact(" ".join(text.split()))


_HINTS = {
    400: "the server rejected the request; check the generation settings for this model",
    401: "check the API key in ${env}",
    403: "the key in ${env} has no access to this model or endpoint",
    404: "unknown model or wrong --base-url",
    422: "the server could not process the request; check the generation settings for this model",
}


def reasoning_tokens(usage: Any) -> int:
    """usage.completion_tokens_details.reasoning_tokens (0 when the server does not report it)."""
    details = getattr(usage, "completion_tokens_details", None)
    return getattr(details, "reasoning_tokens", None) or 0


def _is_transient(exc: BaseException) -> bool:
    from openai import APIConnectionError, APIStatusError

    if isinstance(exc, APIStatusError):
        return exc.status_code in TRANSIENT_STATUSES or exc.status_code >= 500
    return isinstance(exc, (APIConnectionError, MalformedResponse))  # includes APITimeoutError


def _refused(exc: BaseException) -> bool:
    """True when a ConnectionRefusedError (nothing listens on the port) is among the causes of `exc`."""
    seen: BaseException | None = exc
    for _ in range(10):  # the client wraps the socket error a few levels deep
        if seen is None or isinstance(seen, ConnectionRefusedError):
            return seen is not None
        seen = seen.__cause__ or seen.__context__
    return False


def _is_api_error(exc: BaseException) -> bool:
    from openai import APIError

    return isinstance(exc, APIError)


def _server_message(exc: Any) -> str:
    """The `error.message` of an OpenAI-style error body, else a short slice of the raw body."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
        if message:
            return str(message)
    return str(body)[:200] if body else "(no message)"


def _retry_after(exc: BaseException | None, cap: float) -> float:
    """Seconds the server asked us to wait (retry-after-ms or Retry-After), at most `cap`; 0 if none."""
    response = getattr(exc, "response", None)
    if response is None:
        return 0.0
    headers = response.headers
    seconds: float | None = None
    if headers.get("retry-after-ms"):
        seconds = _to_float(headers["retry-after-ms"])
        seconds = seconds / 1000 if seconds is not None else None
    if seconds is None and headers.get("retry-after"):
        value = headers["retry-after"]
        seconds = _to_float(value)
        if seconds is None:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = None
    if seconds is None or seconds != seconds:  # missing or NaN
        return 0.0
    return min(max(seconds, 0.0), cap)


def _to_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    number = _to_float(value)
    if number is None or number < 0:
        raise UserError(f"${name} must be a non-negative number of seconds, got {value!r}")
    return number
