"""The task plugin contract: load samples, solve each with model calls, score, aggregate."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import UserError
from harness.types import GenerateConfig, Metric, Record, Sample, Score

if TYPE_CHECKING:
    from harness.context import SampleContext


class TaskOptions(BaseModel):
    """Options every task accepts through `-T key=value`; tasks subclass to add their own."""

    model_config = ConfigDict(extra="forbid")
    data: str | None = None  # local file/folder in the upstream format, or a hub id
    protocol: Literal["default", "paper"] = "default"  # paper: the source paper's prompts, decoding, repeats, parsing


class DatasetInfo(BaseModel):
    """Where the samples came from (goes into the manifest)."""

    source: str
    revision: str | None = None
    content_hash: str
    n_samples: int


class Plot(BaseModel):
    """A chart the HTML report draws (inline SVG). Point fields by kind:
    bar: label, value, ci_low?, ci_high?, group?; scatter: label, x, y, x_low?, x_high?, y_low?, y_high?;
    heatmap: row, col, value; line: series, x, y.
    """

    kind: Literal["bar", "scatter", "heatmap", "line"]
    title: str
    x_label: str = ""
    y_label: str = ""
    points: list[dict[str, Any]] = Field(default_factory=list)


class TaskResult(BaseModel):
    """A task's aggregated metrics and tables, computed from records alone."""

    task: str
    metrics: list[Metric] = Field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    plots: list[Plot] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Task:
    """Base class of task plugins. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]
    description: ClassVar[str]
    sources: ClassVar[list[str]] = []
    metrics: ClassVar[list[str]] = []
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    generate_config: GenerateConfig = GenerateConfig()  # the model's settings; a protocol may replace them
    paper_protocol: ClassVar[str] = ""  # one line: what `-T protocol=paper` changes (shown by `harness list`)

    def __init__(self, options: dict[str, Any] | None = None):
        try:
            self.options = self.Options(**(options or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            allowed = ", ".join(self.Options.model_fields)
            raise UserError(f"task {self.name}: bad -T option ({problems}); allowed keys: {allowed}") from None

    @property
    def protocol(self) -> str:
        """'default' or 'paper' (the source paper's protocol)."""
        return self.options.protocol

    def repetitions(self, requested: int) -> int:
        """How often each sample is asked: `--repeats`, unless the protocol fixes its own number."""
        return requested

    def load(self) -> tuple[list[Sample], DatasetInfo]:
        """Load and validate the samples (raise UserError naming file, row and field)."""
        raise NotImplementedError

    async def solve(self, sample: Sample, ctx: "SampleContext") -> None:
        """Make the model calls for one sample via `ctx.generate` (they are recorded as exchanges)."""
        raise NotImplementedError

    async def score(self, sample: Sample, ctx: "SampleContext") -> dict[str, Score]:
        """Score the exchanges in `ctx`; may call judges through `ctx.generate(role='judge')`."""
        raise NotImplementedError

    def templates(self) -> dict[str, str]:
        """Prompt and judge templates this task uses, name -> sha256 (recorded in the manifest)."""
        return {}

    def record_metadata(self, sample: Sample) -> dict[str, Any]:
        """Sample fields copied into each record so aggregation needs only the records."""
        return dict(sample.metadata)

    def aggregate(self, records: list[Record]) -> TaskResult:
        """Compute metrics with 95% intervals from this task's records."""
        raise NotImplementedError

    def sample_values(self, records: list[Record]) -> dict[str, dict[tuple[str, int], float]]:
        """Per-record values of headline metrics: {metric: {(sample_id, repetition): value}}.

        Values are in the metric's unit and the metric is their mean (a refusal rate in % gives 100.0 or
        0.0 per record). Gates pair them across runs and reports pick worst offenders from them; the
        default has none, so gates fall back to comparing intervals.
        """
        return {}

    def report_markdown(self, result: TaskResult) -> str:
        """Task section of report.md; the default renders metrics and tables."""
        from harness.report.markdown import default_task_section

        return default_task_section(result)
