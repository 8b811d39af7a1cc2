"""Units of the report: SVG plots of every kind, and the choice of example records."""
from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from harness.report.examples import attention, metric_examples, primary_score_examples
from harness.report.svg import nice_ticks, render_plot
from harness.task import Plot
from harness.types import Metric, Record, Score

NASTY = 'a<b>&"c'


def parse(svg: str) -> ET.Element:
    """Well-formed XML or the test fails; returns the root <svg>."""
    root = ET.fromstring(svg)
    assert root.tag == "svg"
    return root


def lines_of(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter("line") if e.get("class") == cls]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter("text")]


def test_bar_plot_has_title_axes_labels_and_whiskers():
    plot = Plot(kind="bar", title=f"Bars {NASTY}", x_label="rate, %", points=[
        {"label": NASTY, "value": 40.0, "ci_low": 20.0, "ci_high": 60.0, "group": "safe"},
        {"label": "second", "value": 75.0, "ci_low": 50.0, "ci_high": 90.0, "group": "unsafe"},
        {"label": "no interval", "value": 10.0},
        {"label": "skipped", "value": None},
    ])
    svg = render_plot(plot)
    root = parse(svg)
    assert root.find("title").text == f"Bars {NASTY}"
    assert len(root.findall("./g/rect")) == 3  # the None bar is skipped
    assert len(lines_of(root, "whisker")) == 2 * 3  # a line and two caps per interval
    assert NASTY in texts(root) and "rate, %" in texts(root) and "safe" in texts(root)
    assert {"0", "20", "40", "60", "80", "100"} <= set(texts(root))  # tick labels cover 0..90
    assert "://" not in svg


def test_bar_whisker_spans_its_interval():
    root = parse(render_plot(Plot(kind="bar", title="t", points=[
        {"label": "a", "value": 50.0, "ci_low": 25.0, "ci_high": 75.0}, {"label": "b", "value": 100.0}])))
    axis = lines_of(root, "axis")[0]
    left, right = float(axis.get("x1")), float(axis.get("x2"))  # 0 .. 100 on the x axis
    whisker = lines_of(root, "whisker")[0]
    assert float(whisker.get("x1")) == pytest.approx(left + 0.25 * (right - left))
    assert float(whisker.get("x2")) == pytest.approx(left + 0.75 * (right - left))


def test_scatter_plot_with_both_intervals():
    root = parse(render_plot(Plot(kind="scatter", title="Risk vs over-refusal", x_label="ORS", y_label="ARS",
                                  points=[{"label": "cyber", "x": 10, "y": 30, "x_low": 5, "x_high": 15,
                                           "y_low": 20, "y_high": 40},
                                          {"label": NASTY, "x": 50, "y": 60}])))
    assert len(list(root.iter("circle"))) == 2
    assert len(lines_of(root, "whisker")) == 6
    assert {"ORS", "ARS", NASTY, "cyber"} <= set(texts(root))


def test_heatmap_has_one_cell_per_row_and_column():
    points = [{"row": f"q{r}", "col": f"${c}", "value": r * 10 + c} for r in range(3) for c in range(4)]
    points[0]["value"] = None
    root = parse(render_plot(Plot(kind="heatmap", title="P(accept)", x_label="money", y_label="quantity",
                                  points=points)))
    rects = root.findall("./g/rect")
    assert len(rects) == 12
    assert rects[0].get("fill") == "#eeeeee"  # missing value
    assert rects[-1].get("fill") == "rgb(33,82,140)"  # the maximum is the darkest
    assert "23" in texts(root) and "–" in texts(root)


def test_line_plot_one_polyline_per_series_sorted_by_x():
    root = parse(render_plot(Plot(kind="line", title="Price curves", points=[
        {"series": "s1", "x": 3, "y": 1}, {"series": "s1", "x": 1, "y": 2}, {"series": "s2", "x": 2, "y": 5}])))
    polylines = list(root.iter("polyline"))
    assert len(polylines) == 2
    xs = [float(p.split(",")[0]) for p in polylines[0].get("points").split()]
    assert xs == sorted(xs)


def test_empty_plot_says_no_data():
    root = parse(render_plot(Plot(kind="scatter", title="Nothing")))
    assert "no data" in texts(root)


def test_nice_ticks_cover_the_range():
    ticks = nice_ticks(0.0, 79.3)
    assert ticks[0] <= 0 and ticks[-1] >= 79.3 and ticks == sorted(ticks)
    assert nice_ticks(-0.3, 0.7) == [-0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8]


def record(sample_id: str, value=None, error=None, score_error=None) -> Record:
    return Record(task="t", sample_id=sample_id, error=error,
                  scores={"main": Score(value=value, error=score_error)})


def test_metric_examples_order_by_direction_and_skip_ideal():
    values = {("a", 0): 0.0, ("b", 0): 100.0, ("c", 0): 50.0, ("d", 0): 100.0}
    records = {key: record(key[0]) for key in values}
    lower = Metric(name="t.rate", value=62.5, direction="lower")
    assert [e.record.sample_id for e in metric_examples(lower, values, records)] == ["b", "d", "c"]
    higher = Metric(name="t.rate", value=62.5, direction="higher")
    assert [e.record.sample_id for e in metric_examples(higher, values, records)] == ["a", "c"]
    score = Metric(name="t.score", value=1.0, direction="lower", unit="points")
    assert [e.record.sample_id for e in metric_examples(score, values, records)] == ["b", "d", "c", "a"]


def test_attention_lists_errors_then_judge_errors_and_fallback_ranks_primary_score():
    records = [record("ok", 0.2), record("judge", score_error="judge_error"), record("gen", error="timeout"),
               record("high", 0.9)]
    assert [e.record.sample_id for e in attention(records)] == ["gen", "judge"]
    assert [e.record.sample_id for e in primary_score_examples(records)] == ["high", "ok"]
