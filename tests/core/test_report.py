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
