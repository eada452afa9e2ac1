"""The studio's pages: HTML made on the server (every value escaped), charts drawn in the browser by the
vendored uPlot from the JSON API, live updates by server-sent events (``static/studio.js``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from seekforge.studio._files import mapping
from seekforge.studio._registry import label
from seekforge.studio._runs import STATUSES, RunSummary

_COLUMNS = [("name", "run"), ("started", "started"), ("status", "status"), ("model", "model"),
            ("epochs", "epochs"), ("validation", "validation"), ("test", "test"), ("updated", "updated")]  # fmt: skip
_RUN_FIELDS = set(RunSummary.__dataclass_fields__)


def _js(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element: no ``</script>``, no comment or CDATA
    opener, no line terminators JavaScript reads differently from JSON."""
    text = json.dumps(value)
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _page(title: str, body: str, *, script: str = "") -> str:
    scripts = (
        '<script src="/static/uPlot.iife.min.js"></script><script src="/static/studio.js"></script>'
        f"<script>{script}</script>"
        if script
        else ""
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · seekforge studio</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/uPlot.min.css"><link rel="stylesheet" href="/static/studio.css">'
        f'</head><body><header><a href="/" class="brand">seekforge studio</a><nav><a href="/">runs</a>'
        f'<a href="/studies">studies</a><a href="/packages">packages</a><a href="/serving">serving</a>'
        f'<a href="/registry">registry</a><a href="/drift">drift</a><a href="/new">new recipe</a></nav>'
        f"</header><main>{body}</main>"
        f"{scripts}</body></html>"
    )


def _metric(values: dict[str, float]) -> str:
    return "".join(f'<span class="metric">{escape(k)} {v:.4f}</span>' for k, v in values.items()) or "–"


def _when(stamp_or_time: str | float) -> str:
    """A time to show, HTML-escaped: a folder's stamp ``YYYYmmdd-HHMMSS`` (as it is when it is not one) or
    seconds since 1970."""
    if isinstance(stamp_or_time, float):
        return dt.datetime.fromtimestamp(stamp_or_time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    try:
        return dt.datetime.strptime(stamp_or_time[:15], "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return escape(stamp_or_time)


def _pager(link: Any, *, offset: int, limit: int, total: int, noun: str) -> tuple[str, list[str]]:
    """What a page shows ("51–100 of 730") and its links to the pages before and after it."""
    pages = []
    if offset > 0:
        pages.append(f'<a href="{escape(link(offset=max(0, offset - limit)))}">← previous</a>')
    if offset + limit < total:
        pages.append(f'<a href="{escape(link(offset=offset + limit))}">next →</a>')
    return (f"{offset + 1}–{min(offset + limit, total)} of {total}" if total else f"no {noun}"), pages


def _status(summary: RunSummary) -> str:
    flag = f' <span class="bad" title="lines of metrics.jsonl that could not be read">{len(summary.bad_lines)} unreadable line{"s" * (len(summary.bad_lines) != 1)}</span>' if summary.bad_lines else ""  # fmt: skip
    return f'<span class="status {summary.status}">{summary.status}</span>{flag}'


def runs_page(found: dict[str, Any], *, runs: Path, sort: str, order: str, query: str, status: str | None) -> str:
    """The runs table: one page of runs, sortable by each column, filtered, with boxes to compare runs."""
    total, offset, limit = found["total"], found["offset"], found["limit"]
    base = {"q": query, **({"status": status} if status else {}), "limit": limit}

    def link(**changes: Any) -> str:
        return "/?" + urlencode({**base, "sort": sort, "order": order, "offset": offset, **changes})

    head = "".join(
        f'<th><a href="{escape(link(sort=key, order="asc" if key == sort and order == "desc" else "desc", offset=0))}">'
        f"{label}{(' ▼' if order == 'desc' else ' ▲') if key == sort else ''}</a></th>"
        for key, label in _COLUMNS
    )
    rows = []
    for found_run in found["runs"]:
        run = RunSummary(**{k: v for k, v in found_run.items() if k in _RUN_FIELDS})
        marks = "".join(
            f'<a class="registered" href="/registry">{escape(m)}</a>' for m in found_run.get("registered", [])
        )
        rows.append(
            f'<tr data-run="{escape(run.id)}"><td><input type="checkbox" name="run" value="{escape(run.id)}" '
            f'aria-label="compare {escape(run.id)}"></td><td><a href="/runs/{escape(run.id)}">{escape(run.name)}</a></td>'
            f"<td>{_when(run.stamp)}</td><td>{_status(run)}</td><td>{escape(run.model or '–')}</td>"
            f'<td class="num">{run.epochs}</td><td>{_metric(run.validation)}</td><td>{_metric(run.test)}</td>'
            f"<td>{_when(run.updated)}</td><td>{marks}</td></tr>"
        )
    options = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>{s}</option>' for s in ("", *STATUSES)
    ).replace('<option value="">', '<option value="">any status')
    shown, pages = _pager(link, offset=offset, limit=limit, total=total, noun="runs")
    body = (
        f'<h1>Runs</h1><p class="where">under <code>{escape(str(runs))}</code></p>'
        f'<form class="filter" method="get" action="/"><input type="search" name="q" value="{escape(query)}" '
        f'placeholder="name, model or status"><select name="status">{options}</select>'
        f'<input type="hidden" name="sort" value="{escape(sort)}"><input type="hidden" name="order" value="{escape(order)}">'
        "<button>filter</button></form>"
        f'<form id="compare" method="get" action="/compare"><table class="runs"><thead><tr><th></th>{head}<th>registry</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table><p class="pages"><span id="shown">{shown}</span> {" ".join(pages)} '
        '<button type="button" id="compare-button" disabled>compare selected</button></p></form>'
    )
    return _page("Runs", body, script="studio.compareBoxes();")


def run_page(run: RunSummary | None, *, recipe: str, report: bool) -> str:
    """A run: what it is, its curves (growing while it trains), its recipe, its report."""
    if run is None:
        return _page("Run", "<h1>Run</h1><p>This run cannot be read.</p>")
    facts = (
        f"<dl><dt>status</dt><dd>{_status(run)}</dd><dt>model</dt><dd>{escape(run.model or '–')}</dd>"
        f'<dt>epochs</dt><dd id="epochs">{run.epochs}</dd><dt>validation</dt><dd>{_metric(run.validation)}</dd>'
        f"<dt>test</dt><dd>{_metric(run.test)}</dd><dt>started</dt><dd>{_when(run.stamp)}</dd></dl>"
    )
    link = f'<p><a href="/runs/{escape(run.id)}/report">the run\'s report</a></p>' if report else ""
    if run.status == "finished":
        link += f'<p><a href="/packages/{escape(run.id)}/package">its package</a> (lineage, exports, model card)</p>'
    body = (
        f"<h1>{escape(run.name)} <small>{escape(run.stamp)}</small></h1>{facts}{link}"
        '<section id="charts" aria-live="polite"></section>'
        '<section id="weights" hidden><h2>Weights by layer</h2><p><label>layer <select id="weights-layer"></select>'
        '</label> <label>epoch <input id="weights-epoch" type="range" min="1" max="1" value="1"></label> '
        '<output id="weights-shown"></output></p><div id="weights-charts" class="charts"></div></section>'
        f'<h2>Recipe</h2><pre class="recipe">{escape(recipe) or "(no recipe.yaml)"}</pre>'
    )
    return _page(run.id, body, script=f"studio.runCharts({_js(run.id)});")


def compare_page(ids: list[str], *, diff: str) -> str:
    """Several runs' curves overlaid, metric by metric, and how the first two recipes differ."""
    names = "".join(f'<li><a href="/runs/{escape(i)}">{escape(i)}</a></li>' for i in ids)
    body = (
        f'<h1>Compare {len(ids)} runs</h1><ul>{names}</ul><section id="charts"></section>'
        f"<h2>Recipe: {escape(ids[0])} against {escape(ids[1])}</h2>"
        f'<pre class="diff">{escape(diff) or "(the recipes are the same)"}</pre>'
    )
    return _page("Compare", body, script=f"studio.compareCharts({_js(ids)});")


def signin_page(next_path: str, *, refused: bool = False) -> str:
    """A form that posts the key; the server answers with a cookie only it can read (HttpOnly)."""
    body = (
        "<h1>Sign in</h1><p>This studio needs an API key (one line of its <code>--api-key-file</code>).</p>"
        + ('<p class="bad">That key is not one of them.</p>' if refused else "")
        + '<form method="post" action="/signin"><input type="password" name="key" autocomplete="current-password" '
        f'aria-label="API key"><input type="hidden" name="next" value="{escape(next_path)}"><button>sign in</button>'
        "</form>"
    )
    return _page("Sign in", body)


def _listed(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one (a damaged file's field)."""
    return value if isinstance(value, list) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, unit: str = "", digits: int = 4) -> str:
    """A number as shown; "–" for anything else (a damaged file's field)."""
    return f"{value:.{digits}f}{unit}" if _is_number(value) else "–"


def _megabytes(value: Any) -> float | None:
    return value / 1e6 if _is_number(value) else None


def studies_page(found: list[dict[str, Any]], *, runs: Path) -> str:
    """Every study: its state, trials by state, its best value."""
    rows = []
    for study in found:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(study["states"].items())) or "–"
        best = study["best"]
        shown = f"{best['value']:.4f} (trial {best['number']})" if best else "–"
        problem = f' <span class="bad">{escape(study["problem"])}</span>' if study["problem"] else ""
        rows.append(
            f'<tr><td><a href="/studies/{escape(study["id"])}">{escape(study["name"])}</a></td>'
            f'<td>{escape(study["stamp"])}</td><td><span class="status {study["status"]}">{study["status"]}</span>'
            f"{problem}</td><td>{escape(str(study['metric'] or '–'))} ({escape(str(study['direction'] or '?'))})</td>"
            f'<td class="num">{study["trials"]}</td><td>{escape(states)}</td><td>{shown}</td></tr>'
        )
    empty = '<tr><td colspan="7">no studies</td></tr>'
    body = (
        f'<h1>Studies</h1><p class="where">under <code>{escape(str(runs))}</code></p><table class="runs"><thead><tr>'
        "<th>study</th><th>folder</th><th>status</th><th>metric</th><th>trials</th><th>states</th><th>best</th>"
        f"</tr></thead><tbody>{''.join(rows) or empty}</tbody></table>"
    )
    return _page("Studies", body)


def study_page(view: dict[str, Any], *, sort: str, order: str, report: bool) -> str:
    """A study: its best trial, the history of values, a page of its trials and their intermediate values."""
    study, trials = view["study"], view["trials"]
    total, offset, limit = view["total"], view["offset"], view["limit"]
    best = study["best"]
    facts = (
        f'<dl><dt>status</dt><dd><span class="status {study["status"]}">{study["status"]}</span></dd>'
        f"<dt>metric</dt><dd>{escape(str(study['metric'] or '–'))} ({escape(str(study['direction'] or '?'))})</dd>"
        f"<dt>trials</dt><dd>{total}</dd>"
    )
    if best:
        facts += f"<dt>best</dt><dd>{best['value']:.4f}, trial {best['number']}: <code>{escape(json.dumps(best['params']))}</code></dd>"
    facts += "</dl>"
    if study["problem"]:
        facts += f'<p class="bad">the study\'s storage cannot be read: {escape(study["problem"])}</p>'

    def link(**changes: Any) -> str:
        query = {"sort": sort, "order": order, "offset": offset, "limit": limit, **changes}
        return f"/studies/{study['id']}?" + urlencode(query)

    head = "".join(
        f'<th><a href="{escape(link(sort=key, order="asc" if key == sort and order == "desc" else "desc", offset=0))}">'
        f"{key}</a></th>"
        for key in ("number", "state", "value", "duration")
    )
    rows = "".join(
        f'<tr data-trial="{t["number"]}"><td class="num">{t["number"]}</td><td>{t["state"].lower()}</td>'
        f'<td class="num">{_number(t["value"])}</td><td class="num">{_number(t["duration"], " s", 1)}</td>'
        f'<td class="num">{escape(str(t["epochs"])) if t["epochs"] is not None else "–"}</td>'
        f"<td><code>{escape(json.dumps(t['params']))}</code></td></tr>"
        for t in trials
    )
    shown, pages = _pager(link, offset=offset, limit=limit, total=total, noun="trials")
    link_report = f'<p><a href="/studies/{escape(study["id"])}/report">the study\'s report</a></p>' if report else ""
    body = (
        f"<h1>{escape(study['name'])} <small>{escape(study['stamp'])}</small></h1>{facts}{link_report}"
        '<section id="charts"></section><section id="importance" class="charts"></section><h2>Trials</h2>'
        '<table class="runs"><thead><tr>'
        f"{head}<th>epochs</th><th>parameters</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="pages"><span>{shown}</span> {" ".join(pages)}</p>'
    )
    intermediate = {str(t["number"]): t["intermediate"] for t in trials if t["intermediate"]}
    live = study["status"] == "running"
    script = f"studio.studyCharts({_js(study['id'])}, {_js(intermediate)}, {_js(study['direction'])}, {_js(live)});"
    return _page(study["id"], body, script=script if study["status"] != "unreachable" else "")


def packages_page(found: list[dict[str, Any]], *, runs: Path) -> str:
    """Every package: what it is, its test metric, its exports and whether each passed its gate."""
    rows = []
    for package in found:
        exports = (
            " ".join(
                f'<span class="status {"finished" if ok else "incomplete"}">{escape(name)}</span>'
                for name, ok in package["exports"].items()
            )
            or "–"
        )
        rows.append(
            f'<tr><td><a href="/packages/{escape(package["id"])}">{escape(package["id"])}</a></td>'
            f"<td>{escape(package['name'])}</td><td>{escape(str(package['task'] or '–'))}</td>"
            f"<td>{escape(str(package['model'] or '–'))}</td><td>{_metric(package['test'])}</td>"
            f"<td>{exports}</td><td>{escape(str(package['created'] or '–'))}</td></tr>"
        )
    empty = '<tr><td colspan="7">no packages</td></tr>'
    body = (
        f'<h1>Packages</h1><p class="where">under <code>{escape(str(runs))}</code></p><table class="runs"><thead>'
        "<tr><th>package</th><th>name</th><th>task</th><th>model</th><th>test</th><th>exports (parity)</th>"
        f"<th>created</th></tr></thead><tbody>{''.join(rows) or empty}</tbody></table>"
    )
    return _page("Packages", body)


def _flow(lineage: list[dict[str, Any]], exports: dict[str, Any], registered: list[dict[str, Any]]) -> str:
    """The lineage as a graph read left to right: data -> run -> each package made from the one before
    (trained, compressed, optimised) -> this package's exports (with their gates) -> its registry versions."""
    nodes: list[str] = []
    oldest = lineage[-1] if lineage else None
    if oldest is not None and not oldest["missing"] and oldest.get("data_hash"):
        nodes.append(f'<li class="node data"><b>data</b><code>{escape(str(oldest["data_hash"])[:12])}</code>'
                     f'<small>recipe <code>{escape(str(oldest.get("recipe_hash"))[:12])}</code></small></li>')  # fmt: skip
    parts = (oldest.get("id") or "").split("/") if oldest is not None else []
    if len(parts) == 3 and parts[2] == "package":  # a run's own package: <name>/<stamp>/package
        run = "/".join(parts[:2])
        nodes.append(f'<li class="node run"><b>run</b><a href="/runs/{escape(run)}">{escape(run)}</a></li>')
    for step in reversed(lineage):
        if step["missing"]:
            nodes.append(f'<li class="node bad"><b>package</b>{escape(step["path"])}<small>not found</small></li>')
            continue
        where = (
            f'<a href="/packages/{escape(step["id"])}">{escape(step["id"])}</a>' if step["id"] else escape(step["path"])
        )
        made = {"compress": "compressed", "optimize": "optimised"}.get(str(step.get("made")), "trained")
        headline = {k: v for k, v in mapping(step["test"]).items() if k != "rows" and _is_number(v)}
        nodes.append(f'<li class="node package"><b>{made}</b>{where}<small>{escape(str(step.get("name") or ""))} '
                     f"{_metric(dict(list(headline.items())[:1]))}</small></li>")  # fmt: skip
    if exports:
        shown = "".join(
            f'<span class="{"ok" if mapping(mapping(r).get("parity")).get("passed") else "bad"}">{escape(name)}</span>'
            for name, r in exports.items()
        )
        nodes.append(f'<li class="node export"><b>exports</b>{shown}</li>')
    if registered:
        shown = "".join(f'<a href="/registry#{escape(m["name"])}">{escape(label(m))}</a>' for m in registered)
        nodes.append(f'<li class="node registry"><b>registry</b>{shown}</li>')
    return f'<ol class="flow" aria-label="lineage">{"".join(nodes)}</ol>'


def _fused(graph: Any) -> str:
    """An optimised export's fusions (the operators its graph gained) and its node counts."""
    changes = mapping(graph)
    nodes = _listed(changes.get("nodes"))
    if len(nodes) != 2:
        return "–"
    added = ", ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in mapping(changes.get("added")).items())
    return f"{added or 'nothing'} ({escape(str(nodes[0]))} → {escape(str(nodes[1]))} nodes)"


def _variants(manifest: dict[str, Any]) -> str:
    """The compression's variants (parent, pruned, student, QAT) with their figures, as ``compress`` measured."""
    record = mapping(manifest.get("compress"))
    rows = [r for r in _listed(record.get("variants")) if isinstance(r, dict)]
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{_number(r.get(c), digits=4 if isinstance(r.get(c), float) else 0)}</td>'
            if _is_number(r.get(c)) else f"<td>{escape(str(r.get(c, '–')))}</td>" for c in columns
        ) + "</tr>"
        for r in rows
    )  # fmt: skip
    chosen = escape(str(record.get("selected", "–")))
    return (f"<h2>Compression</h2><p>kept: <b>{chosen}</b> (metric {escape(str(record.get('metric', '–')))})</p>"
            f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')  # fmt: skip


def package_page(summary: dict[str, Any], manifest: dict[str, Any], *, lineage: list[dict[str, Any]], card: str,
                 report: bool, registered: Sequence[dict[str, Any]] = (), explanation: dict[str, Any] | None = None,
                 inside: bool = False) -> str:  # fmt: skip
    """A package: its facts, its lineage graph, its exports with their parity records, its compression
    variants, its explanation, what its model makes of a held-out row, its inputs, its model card."""
    facts = (
        f"<dl><dt>name</dt><dd>{escape(summary['name'])}</dd><dt>task</dt><dd>{escape(str(summary['task']))}</dd>"
        f"<dt>model</dt><dd>{escape(str(summary['model'] or '–'))}</dd><dt>test</dt><dd>{_metric(summary['test'])}</dd>"
        f"<dt>created</dt><dd>{escape(str(summary['created'] or '–'))}</dd>"
        f"<dt>seekforge</dt><dd>{escape(str(manifest.get('seekforge_version', '–')))}</dd></dl>"
    )
    exports = []
    for name, record in mapping(manifest.get("exports")).items():
        record = mapping(record)
        parity = mapping(record.get("parity"))
        verdict = (
            "passed" if parity.get("passed") else "failed: " + "; ".join(map(str, _listed(parity.get("failures"))))
        )
        exports.append(
            f"<tr><td>{escape(name)}</td><td>{escape(str(record.get('format')))}</td>"
            f"<td>{escape(str(record.get('precision')))}</td><td>{escape(str(record.get('inputs', 'encoded')))}</td>"
            f'<td class="num">{_number(parity.get("rows"), digits=0)}</td><td class="num">{_number(parity.get("agreement"))}</td>'
            f'<td class="num">{_number(parity.get("max_abs_diff"), digits=6)}</td>'
            f'<td>{escape(verdict)}</td><td class="num">{_number(_megabytes(record.get("bytes")), " MB", 2)}</td>'
            f"<td>{_fused(record.get('graph'))}</td></tr>"
        )
    inputs = "".join(f"<li><code>{escape(str(f.get('name')))}</code> {escape(str(f.get('type')))}</li>"
                     for f in _listed(manifest.get("inputs")) if isinstance(f, dict))  # fmt: skip
    link = f'<p><a href="/packages/{escape(summary["id"])}/report">the package\'s report</a></p>' if report else ""
    body = (
        f"<h1>{escape(summary['name'])} <small>{escape(summary['id'])}</small></h1>{facts}{link}"
        f"<h2>Lineage</h2>{_flow(lineage, mapping(manifest.get('exports')), list(registered))}"
        '<h2>Exports</h2><table class="runs"><thead><tr><th>variant</th><th>format</th><th>precision</th>'
        "<th>inputs</th><th>parity rows</th><th>agreement</th><th>max |diff|</th><th>gate</th><th>size</th>"
        "<th>fused by onnxruntime</th></tr>"
        f"</thead><tbody>{''.join(exports) or '<tr><td colspan=10>none yet: seekforge export PACKAGE</td></tr>'}</tbody></table>"
        f"{_variants(manifest)}{_explanation(summary['id'], explanation)}"
        + (_INSIDE if inside else "")
        + f'<h2>Inputs</h2><ul>{inputs}</ul><h2>Model card</h2><pre class="card">{escape(card) or "(no model card)"}</pre>'
    )
    return _page(summary["id"], body, script=f"studio.insideMaps({_js(summary['id'])});" if inside else "")


_INSIDE = (
    '<section id="inside"><h2>Inside the model</h2><p><label>held-out row <input id="inside-row" type="number" '
    'min="0" value="0"></label> <output id="inside-facts"></output></p><p id="inside-controls" hidden><label>layer '
    '<select id="inside-layer"></select></label> <label>head <select id="inside-head"></select></label></p>'
    '<div id="inside-maps" class="maps"></div></section>'
)


def _explanation(package_id: str, found: dict[str, Any] | None) -> str:
    """What ``seekforge explain`` found for the package: its method, its checks, the most important inputs."""
    if not found:
        return ""
    completeness = mapping(found.get("completeness"))
    faithful = mapping(found.get("faithfulness"))
    checked = ("passed" if completeness.get("passed") else "failed") if completeness.get("checked") else "not checked"
    ratio = faithful.get("area_ratio")
    importance = sorted(((k, v) for k, v in mapping(found.get("importance")).items() if _is_number(v)),
                        key=lambda kv: -abs(kv[1]))[:8]  # fmt: skip
    top = "".join(f'<tr><td>{escape(str(k))}</td><td class="num">{_number(v)}</td></tr>' for k, v in importance)
    return (
        f"<h2>Explanation</h2><dl><dt>method</dt><dd>{escape(str(found.get('method')))} "
        f"({escape(str(found.get('kind')))}, {len(_listed(found.get('rows')))} rows)"
        "</dd><dt>explains</dt>"
        f"<dd>{escape(str(found.get('output')))}</dd><dt>completeness</dt><dd>{checked}, max error "
        f"{_number(completeness.get('max_error'), digits=6)}</dd><dt>faithfulness</dt><dd>removing the top inputs "
        f"moves the output {_number(ratio, '×', 2)} as much as removing random ones</dd></dl>"
        + (f'<table class="runs"><thead><tr><th>input</th><th>mean |attribution|</th></tr></thead><tbody>{top}'
           "</tbody></table>" if top else "")
        + f'<p><a href="/packages/{escape(package_id)}/explain/report">the explanation\'s report</a></p>'
    )  # fmt: skip


def registry_page(found: dict[str, Any], *, inside: dict[str, dict[int, str | None]]) -> str:
    """The registry's models: each version with its aliases, gates, metrics and package (a link when the
    package is under the studio's folder), and the model's history of registrations, promotions, rollbacks."""
    sections = []
    for model in found["models"]:
        name = str(model["name"])
        rows = []
        for v in reversed(model["versions"]):
            package = inside.get(name, {}).get(v["version"])
            where = (
                f'<a href="/packages/{escape(package)}">{escape(package)}</a>' if package else escape(str(v["package"]))
            )
            gates = " ".join(f'<span class="{"ok" if mapping(g).get("passed", True) else "bad"}">{escape(k)}</span>'
                             for k, g in mapping(v["gates"]).items())  # fmt: skip
            metrics = {k: m for k, m in mapping(v["metrics"]).items() if k != "rows" and _is_number(m)}
            aliases = " ".join(f'<span class="alias">{escape(a)}</span>' for a in v["aliases"])
            rows.append(
                f'<tr data-version="{int(v["version"])}"><td class="num">{int(v["version"])}</td><td>{aliases}</td>'
                f"<td>{_metric(dict(list(metrics.items())[:2]))}</td><td>{gates or '–'}</td><td>{where}</td>"
                f"<td>{escape(str(v['created_at']))}</td><td>{escape(str(v['created_by']))}</td></tr>"
            )
        events = "".join(
            f"<li>{escape(str(e['at']))} {escape(str(e['by']))}: {escape(str(e['action']))} "
            f"{'v' + escape(str(e['version'])) if e.get('version') is not None else ''}"
            f"{' as ' + escape(str(e['alias'])) if e.get('alias') else ''}</li>"
            for e in reversed(model["history"][-20:])
        )
        sections.append(
            f'<section id="{escape(name)}"><h2>{escape(name)}</h2><table class="runs"><thead><tr><th>version</th>'
            "<th>aliases</th><th>test</th><th>gates</th><th>package</th><th>registered</th><th>by</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table><h3>History (newest first)</h3><ul class="events">{events}</ul></section>'
        )
    problem = f'<p class="bad">{escape(found["problem"])}</p>' if found.get("problem") else ""
    body = f'<h1>Registry</h1><p class="where"><code>{escape(found["where"])}</code>, read-only</p>{problem}' + (
        "".join(sections) or ("" if problem else "<p>No model is registered yet.</p>")
    )
    return _page("Registry", body)


def serving_page(urls: list[str]) -> str:
    """The watched servers: request and error rates, latency percentiles and the batch sizes, live."""
    if not urls:
        body = (
            "<h1>Serving</h1><p>No server is watched. Start the studio with the address of a running "
            "<code>seekforge serve</code>: <code>seekforge studio --server http://127.0.0.1:8000</code> "
            "(repeatable).</p>"
        )
        return _page("Serving", body)
    sections = "".join(
        f'<section class="server" data-server="{i}"><h2>{escape(url)}</h2><p class="facts" id="server-{i}-facts">'
        f'reading…</p><div class="charts" id="server-{i}-charts"></div></section>'
        for i, url in enumerate(urls)
    )
    body = f"<h1>Serving</h1>{sections}"
    return _page("Serving", body, script=f"studio.servingCharts({len(urls)});")


def drift_page(logs: list[str], *, window: float, windows: int) -> str:
    """The watched prediction logs: each feature's drift statistic per window, drifted windows marked."""
    if not logs:
        body = (
            "<h1>Drift</h1><p>No prediction log is watched. Start the studio with the log a server writes: "
            "<code>seekforge studio --log predictions.db</code> (repeatable).</p>"
        )
        return _page("Drift", body)
    form = (
        '<form class="filter" method="get" action="/drift"><label>window (s) <input name="window" type="number" '
        f'min="1" value="{window:g}"></label><label>windows <input name="windows" type="number" min="1" max="500" '
        f'value="{windows}"></label><button>measure</button></form>'
    )
    sections = "".join(
        f'<section class="log" data-log="{i}"><h2>{escape(log)}</h2><p class="facts" id="log-{i}-facts">measuring…</p>'
        f'<div class="charts" id="log-{i}-charts"></div><table class="runs drift" id="log-{i}-table"></table></section>'
        for i, log in enumerate(logs)
    )
    script = f"studio.driftTables({len(logs)}, {_js(window)}, {int(windows)});"
    return _page("Drift", f"<h1>Drift</h1>{form}{sections}", script=script)


def recipe_page(*, data_root: Path) -> str:
    """Build a recipe: a form made from the recipe's JSON schema, a data file's preview and draft, every
    problem shown at its field as you type, the recipe as YAML, and a button that saves and runs it."""
    body = (
        "<h1>New recipe</h1>"
        f'<section class="data"><h2>Data</h2><p class="where">files under <code>{escape(str(data_root))}</code></p>'
        '<form id="data-form" class="filter"><input id="data-source" placeholder="data/train.csv" aria-label="data file">'
        '<button type="button" id="preview-button">preview</button><select id="label-column" aria-label="column to '
        'predict"></select><button type="button" id="draft-button" disabled>draft a recipe from it</button></form>'
        '<p class="bad" id="data-problem"></p><div id="data-preview"></div></section>'
        '<div class="builder"><form id="recipe-form" autocomplete="off"></form><aside><h2>Problems</h2>'
        '<ul id="problems"><li>checking…</li></ul><button type="button" id="run-button" disabled>save and run</button>'
        '<p id="run-status"></p><h2>recipe.yaml</h2><pre id="recipe-yaml"></pre></aside></div>'
    )
    return _page("New recipe", body, script="studio.recipeBuilder();")
