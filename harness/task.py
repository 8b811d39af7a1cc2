"""The task plugin contract: load samples, solve each with model calls, score, aggregate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import UserError
from harness.metrics import MetricValues
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
    # Judge-based rates a calibration can correct: metric -> (score name, True if the metric counts the
    # score's positives, False if its negatives); see harness.report.corrected.
    judged_rates: ClassVar[dict[str, tuple[str, bool]]] = {}
    # The report's first screen and the end-of-run output: the metrics named here, in this order (see
    # `headline_metrics`; `<...>` marks a family); `invalid_metric` counts answers that could not be scored;
    # `headline_plot` is the title of a `TaskResult` plot drawn on the task's card.
    headline: ClassVar[list[str]] = []
    invalid_metric: ClassVar[str | None] = None
    headline_plot: ClassVar[str | None] = None

    def __init__(self, options: dict[str, Any] | None = None):
        try:
            self.options = self.Options(**(options or {}))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
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

    def metric_values(self, records: list[Record]) -> list[MetricValues]:
        """Per-record values of every metric that is a mean over samples, in report order.

        They are the single source of those metrics: `evaluate` turns them into Metrics (intervals over
        samples, repetitions of a sample as one cluster) and hands them to `aggregate`; the gate pairs them
        across runs, the report picks worst offenders from them and the EEE export writes them per instance.
        """
        return []

    def aggregate(self, records: list[Record], measured: dict[str, Metric]) -> TaskResult:
        """Tables, plots, notes, counts, and the metrics in report order: every metric of `measured` as given,
        plus any statistic that is not a mean of per-record values (a fitted price, a ratio of sums, a
        correlation), computed here with its interval from a bootstrap that resamples samples, each with all
        its repetitions (`harness.stats.bootstrap_ci` over a list with one item per sample)."""
        return TaskResult(task=self.name, metrics=list(measured.values()))

    def headline_metrics(self, result: TaskResult) -> list[Metric]:
        """The metrics named in `headline` that the result has, in that order (all of them if it names none).

        A task whose headline is a family of metrics (`wahlomat.<party>`) overrides this to pick members."""
        if not self.headline:
            return list(result.metrics)
        by_name = {m.name: m for m in result.metrics}
        return [by_name.get(name) or Metric(name=name, value=None) for name in self.headline]

    def report_markdown(self, result: TaskResult) -> str | None:
        """Task section of report.md; None (the default) lets the report render metrics and tables."""
        return None


def extremes(metrics: list[Metric], family: str) -> list[Metric]:
    """The highest and the lowest of a family's metrics that have a value (one if only one has); without any
    value, a placeholder named after the family (`wahlomat.<party>`) that shows as 'no data'."""
    valued = sorted((m for m in metrics if m.value is not None), key=lambda m: (-(m.value or 0.0), m.name))
    if not valued:
        return [Metric(name=family, value=None)]
    return valued[:1] + valued[-1:] if len(valued) > 1 else valued


def evaluate(task: Task, records: list[Record]) -> tuple[TaskResult, dict[str, MetricValues]]:
    """A task's result from its records, and the per-record values its mean-type metrics come from.

    Every consumer (report, gate, rejudge drift, leaderboard export) goes through here, so a metric and
    the values behind it cannot disagree.
    """
    values = {v.spec.name: v for v in task.metric_values(records)}
    measured = {name: v.metric() for name, v in values.items()}
    result = task.aggregate(records, measured)
    changed = [name for name, m in measured.items() if m not in result.metrics]
    if changed:
        raise RuntimeError(f"task {task.name}: aggregate must report {', '.join(changed)} as measured")
    return result, values
