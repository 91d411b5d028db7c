"""Server-drawn SVG charts: one mark per value, labels escaped, close runs kept together."""

import re
from datetime import UTC, datetime, timedelta

from core.charts import LEFT, RIGHT, WIDTH, Series, Stack, bar_chart, line_chart

NOON = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_line_chart_draws_one_point_per_value_and_rings_the_marked_ones():
    svg = line_chart(
        title="nDCG@10 <of> set",
        series=[
            Series("hybrid", [(NOON, 0.8), (NOON + timedelta(days=7), 0.7)], frozenset({1})),
            Series("<script>dense</script>", [(NOON, 0.6)]),
        ],
        y_label="nDCG@10 (0 to 1)",
        x_label="time of the run (UTC)",
        y_max=1.0,
        mark_label="fell",
    )
    assert svg.count('<circle class="point') == 3
    assert svg.count('class="point marked"') == 1
    assert "<script>" not in svg and "&lt;script&gt;dense" in svg
    assert "nDCG@10 &lt;of&gt; set" in svg and "time of the run (UTC)" in svg
    assert "hybrid, 2026-12-07 12:00: 0.7000 (fell)" in svg


def test_runs_minutes_apart_stand_together_in_the_middle():
    svg = line_chart(
        title="t",
        series=[Series(m, [(NOON + timedelta(seconds=i), 0.9)]) for i, m in enumerate("abc")],
        y_label="y",
        x_label="x",
        y_max=1.0,
    )
    xs = [float(x) for x in re.findall(r'<circle class="point" cx="([\d.]+)"', svg)]
    middle = LEFT + (WIDTH - LEFT - RIGHT) / 2
    assert len(xs) == 3 and all(abs(x - middle) < 2 for x in xs)


def test_a_bar_chart_stacks_values_and_skips_zeros():
    svg = bar_chart(
        title="Answers per week",
        columns=["11-23", "11-30"],
        stacks=[Stack("generated", [3, 0]), Stack("not covered", [1, 2])],
        y_label="answers per week",
        x_label="week",
    )
    assert svg.count('<rect class="bar"') == 3
    assert "generated, 11-23: 3" in svg and "not covered, 11-30: 2" in svg
    heights = [float(h) for h in re.findall(r'class="bar" [^>]*height="([\d.]+)"', svg)]
    # 3 and 1 stacked in the first week: the 3 is three times as tall as the 1.
    assert abs(heights[0] - 3 * heights[1]) < 0.2
