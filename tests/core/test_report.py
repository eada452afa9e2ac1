from __future__ import annotations

from seekforge.core import report


def test_line_chart_legend_keeps_each_series_colour() -> None:
    svg = report.line_chart({"train_loss": [1.0, 0.5], "val_loss": [1.1, float("nan")]}, title="loss")
    # inline style: the page's stylesheet colours svg text and would override a fill attribute
    assert "style='fill:#1f77b4'>train_loss" in svg and "style='fill:#ff7f0e'>val_loss" in svg
    assert svg.count("<polyline") == 2
    assert report.line_chart({}, title="empty") == ""


def test_heatmap_scatter_and_page_escape_their_text() -> None:
    heat = report.heatmap([[3, 1], [0, 4]], ["<a>", "b"], title="cm")
    assert "&lt;a&gt;" in heat and ">3</text>" in heat and ">4</text>" in heat
    dots = report.scatter([1.0, 2.0, 3.0], [1.1, 1.9, 3.2], title="s", x_label="x", y_label="y", diagonal=True)
    assert dots.count("<circle") == 3 and "<line" in dots
    page = report.page("t<script>", "sub", [("metrics", report.table([("acc", 0.91234)], ["m", "v"]))])
    assert "<script>" not in page and "0.9123" in page and page.startswith("<!DOCTYPE html>")


def test_ticks_are_round_numbers_that_cover_the_data() -> None:
    for low, high in ((0.00159, 0.711), (0.5, 0.98), (-3.2, 4.7), (1500.0, 1520.0), (2e-5, 9e-5), (5.0, 5.0),
                      (0.9991, 0.9995), (0.693147, 0.693152), (1_500_000.0, 1_500_100.0), (1e17, 1e17)):  # fmt: skip
        ticks = report.nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 8
        labels = [report.tick_label(t, ticks) for t in ticks]
        assert len(set(labels)) == len(labels), labels  # no two ticks print the same
    ticks = report.nice_ticks(0.00159, 0.711)  # the raw range once printed as 0.00159 and 0.711
    assert [report.tick_label(t, ticks) for t in ticks] == ["0.0", "0.2", "0.4", "0.6", "0.8"]
    assert report.nice_ticks(1, 57, integers=True) == [0.0, 20.0, 40.0, 60.0]


def test_the_legend_sits_below_the_plot_area() -> None:
    import re

    svg = report.curves({"a": ([0, 1], [0, 1]), "b": ([0, 1], [1, 0])}, title="t", x_label="x", y_label="y")
    plot_bottom = max(
        float(y) + float(h) for y, h in re.findall(r"<rect x='\d+' y='(\d+)' width='\d+' height='(\d+)'", svg)[:1]
    )
    legend_y = [float(y) for y in re.findall(r"<text x='[\d.]+' y='([\d.]+)' style='fill:", svg)]
    assert len(legend_y) == 2 and min(legend_y) > plot_bottom + 20  # under the axis label, not over a line


def test_parallel_coordinates_and_correlation_heatmap() -> None:
    svg = report.parallel_coordinates([("lr", [0.001, 0.1, 0.01]), ("model", ["mlp", "cnn", "mlp"]),
                                       ("val_accuracy", [0.8, 0.9, 0.85])], [0.8, 0.9, 0.85], title="p")  # fmt: skip
    assert svg.count("<polyline") == 3 and ">cnn</text>" in svg and ">0.001</text>" in svg
    heat = report.correlation_heatmap([[1.0, -0.5], [-0.5, None]], ["a<", "b"], title="c")
    assert "rgb(255,55,55)" in heat and "rgb(155,155,255)" in heat and "&lt;" in heat and "–" in heat
