// seekforge studio: charts from the JSON API with uPlot, new epochs by server-sent events.
"use strict";
const studio = (() => {
  const COLORS = ["#0366d6", "#d73a49", "#28a745", "#6f42c1", "#e36209", "#005cc5", "#b08800", "#22863a"];

  // Which chart a series goes to: losses together, the learning rate alone, validation metrics together.
  function group(name) {
    if (name.endsWith("loss")) return "loss";
    if (name === "lr") return "learning rate";
    if (name === "grad_norm") return "gradient norm (before clipping)";
    if (name === "rows_per_s") return "throughput (training rows/s)";
    if (name.startsWith("val_")) return "validation metrics";
    return name;
  }

  function chart(title, x, series, labels, xLabel = "epoch", where = "charts", bars = false) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.chart = title;
    box.innerHTML = "<h3></h3>";
    box.querySelector("h3").textContent = title;
    document.getElementById(where).appendChild(box);
    const opts = {
      width: 440, height: 240,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [{ label: xLabel }, ...labels.map((label, i) => ({
        label, stroke: COLORS[i % COLORS.length], spanGaps: true,
        ...(bars ? { fill: COLORS[i % COLORS.length] + "55", paths: uPlot.paths.bars({ size: [0.8, 60] }), points: { show: false } } : {}),
      }))],
    };
    return new uPlot(opts, [x, ...series], box);
  }

  // A run's or study's id (name/stamp) as a URL path: each part encoded, the slash kept.
  const path = (id) => id.split("/").map(encodeURIComponent).join("/");

  async function json(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  // One run: a chart per group of series; each new epoch from the event stream is appended to every chart.
  async function runCharts(id) {
    const data = await json(`/api/runs/${path(id)}/curves`);
    const groups = {};
    for (const name of Object.keys(data.series)) (groups[group(name)] ||= []).push(name);
    const charts = [];
    for (const [title, names] of Object.entries(groups)) {
      const plot = chart(title, data.x.slice(), names.map((n) => data.series[n].slice()), names);
      charts.push({ plot, names });
    }
    const events = new EventSource(`/api/runs/${path(id)}/events?since=${data.lines}`);
    events.addEventListener("done", () => events.close());
    events.addEventListener("reset", () => { events.close(); location.reload(); });
    events.onmessage = (message) => {
      const record = JSON.parse(message.data);
      const epoch = record.epoch ?? charts[0]?.plot.data[0].length + 1;
      for (const { plot, names } of charts) {
        const columns = plot.data.map((column) => Array.from(column));
        columns[0].push(epoch);
        names.forEach((n, i) => columns[i + 1].push(typeof record[n] === "number" ? record[n] : null));
        plot.setData(columns);
      }
      const shown = document.getElementById("epochs");
      if (shown) shown.textContent = String(charts.length ? charts[0].plot.data[0].length : Number(shown.textContent) + 1);
    };
    return events;
  }

  // Several runs: one chart per series name, a line per run, on the union of their epochs.
  async function compareCharts(ids) {
    const all = await Promise.all(ids.map((id) => json(`/api/runs/${path(id)}/curves`)));
    const names = [...new Set(all.flatMap((c) => Object.keys(c.series)))];
    const x = [...new Set(all.flatMap((c) => c.x))].sort((a, b) => a - b);
    for (const name of names) {
      const series = all.map((c) => {
        const at = new Map(c.x.map((e, i) => [e, c.series[name]?.[i] ?? null]));
        return x.map((e) => (at.has(e) ? at.get(e) : null));
      });
      chart(name, x, series, ids);
    }
  }

  // A study: the value of each complete trial and the best so far; the learning curves of the trials shown.
  async function studyCharts(id, intermediate) {
    const h = await json(`/api/studies/${path(id)}/history`);
    if (h.number.length) chart("optimisation history", h.number, [h.value, h.best], ["trial value", "best so far"], "trial");
    const trials = Object.keys(intermediate);
    if (!trials.length) return;
    const steps = [...new Set(trials.flatMap((t) => Object.keys(intermediate[t]).map(Number)))].sort((a, b) => a - b);
    const series = trials.map((t) => steps.map((s) => intermediate[t][String(s)] ?? null));
    chart("intermediate values (trials on this page; pruned ones stop early)", steps, series, trials.map((t) => `trial ${t}`), "step");
  }

  // Watched servers: every 2 s, the rates and latency percentiles since the reading before, and the batch sizes.
  function servingCharts(count) {
    for (let i = 0; i < count; i++) {
      const t = [], rates = [[], [], []], latency = [[], [], []];
      let plots = null;
      const facts = document.getElementById(`server-${i}-facts`);
      const started = Date.now() / 1000;
      async function poll() {
        let reading;
        try { reading = await json(`/api/servers/${i}`); } catch (e) { facts.textContent = String(e); return; }
        const s = reading.snapshot;
        if (s.error) { facts.textContent = `cannot read its /metrics: ${s.error}`; facts.className = "facts bad"; return; }
        facts.className = "facts";
        const total = Object.values(s.requests).reduce((a, b) => a + b, 0);
        const errors = Object.entries(s.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
        const models = s.models.map((m) => `${m.name} ${m.version} (${m.backend}, ${m.role})`).join("; ") || "–";
        facts.textContent = `serving ${models} · ${total} requests · in flight ${s.in_flight} · queued rows ${s.queue_rows} · errors: ${errors}`;
        const sizes = s.batch_rows.filter(([le]) => le !== Infinity && le !== null);
        const counts = sizes.map(([, c], k) => c - (k ? sizes[k - 1][1] : 0));
        if (!plots) {
          plots = [
            chart("requests and errors per second", [], [[], [], []], ["requests/s", "errors/s", "rows/s"], "seconds", `server-${i}-charts`),
            chart("latency (ms), each interval", [], [[], [], []], ["p50", "p95", "p99"], "seconds", `server-${i}-charts`),
            chart("rows per batch (batches)", sizes.map(([le]) => le), [counts], ["batches"], "at most rows", `server-${i}-charts`, true),
          ];
        }
        const iv = reading.interval;
        if (iv && iv.requests_per_s !== null) {
          t.push(Math.round(s.time - started));
          [iv.requests_per_s, iv.errors_per_s, iv.rows_per_s].forEach((v, k) => rates[k].push(v));
          [iv.p50, iv.p95, iv.p99].forEach((v, k) => latency[k].push(v === null ? null : v * 1000));
          plots[0].setData([t.slice(), ...rates.map((r) => r.slice())]);
          plots[1].setData([t.slice(), ...latency.map((r) => r.slice())]);
        }
        plots[2].setData([sizes.map(([le]) => le), counts]);
      }
      poll();
      setInterval(poll, 2000);
    }
  }

  // Watched prediction logs: each feature's drift statistic per window (drifted cells marked), every 10 s.
  function driftTables(count, window, windows) {
    for (let i = 0; i < count; i++) {
      const facts = document.getElementById(`log-${i}-facts`);
      const table = document.getElementById(`log-${i}-table`);
      let plot = null;
      async function measure() {
        let found;
        try { found = await json(`/api/drift/${i}?window=${window}&windows=${windows}`); } catch (e) { facts.textContent = String(e); return; }
        if (found.error) { facts.textContent = found.error; facts.className = "facts bad"; return; }
        facts.className = "facts";
        facts.textContent = `${found.package} (version ${found.model_version}): ${found.verdict}`;
        const rows = found.windows.map((w) => [...w.drift.features, ...(w.drift.prediction ? [w.drift.prediction] : [])]);
        const names = [...new Set(rows.flatMap((r) => r.map((f) => f.name)))];
        const cell = (f) => {
          if (!f) return "<td>–</td>";
          const value = f.statistic === null ? "–" : f.statistic.toFixed(3);
          return `<td class="num${f.drifted ? " drifted" : ""}" title="${f.test}${f.p_value === null ? "" : `, p ${f.p_value.toExponential(1)}`}; ${f.present} of ${f.rows} rows">${value}</td>`;
        };
        const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
        table.innerHTML = `<thead><tr><th>feature</th>${found.windows.map((w) => `<th>${escapeHtml(w.end.slice(5, 16))}<br>${w.rows} rows</th>`).join("")}</tr></thead>`
          + `<tbody>${names.map((n) => `<tr><td>${escapeHtml(n)}</td>${rows.map((r) => cell(r.find((f) => f.name === n))).join("")}</tr>`).join("")}</tbody>`;
        const x = found.windows.map((_, k) => k - found.windows.length + 1);
        const series = names.map((n) => rows.map((r) => r.find((f) => f.name === n)?.statistic ?? null));
        if (!plot) plot = chart("drift statistic per window (0: the latest)", x, series, names, "window", `log-${i}-charts`);
        else plot.setData([x, ...series]);
      }
      measure();
      setInterval(measure, 10000);
    }
  }

  function compareBoxes() {
    const form = document.getElementById("compare");
    const button = document.getElementById("compare-button");
    const chosen = () => [...form.querySelectorAll("input[name=run]:checked")].map((box) => box.value);
    form.addEventListener("change", () => { const n = chosen().length; button.disabled = n < 2 || n > 8; });
    button.addEventListener("click", () => { location.href = `/compare?ids=${chosen().map(encodeURIComponent).join(",")}`; });
  }

  return { runCharts, compareCharts, compareBoxes, driftTables, servingCharts, studyCharts };
})();
