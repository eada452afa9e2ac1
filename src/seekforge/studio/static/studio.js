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
    if (name === "peak_rss_mb") return "memory (peak resident MB, this process)";
    if (name.startsWith("val_")) return "validation metrics";
    return name;
  }

  function chart(title, x, series, labels, xLabel = "epoch", where = "charts", bars = false, extra = {}) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.chart = title;
    box.innerHTML = "<h3></h3>";
    box.querySelector("h3").textContent = title;
    document.getElementById(where).appendChild(box);
    const { style, ...rest } = extra;  // style(i): options of series i beyond its label and colour
    const opts = {
      width: 440, height: 240,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [{ label: xLabel }, ...labels.map((label, i) => ({
        label, stroke: COLORS[i % COLORS.length], spanGaps: true,
        ...(bars ? { fill: COLORS[i % COLORS.length] + "55", paths: uPlot.paths.bars({ size: [0.8, 60] }), points: { show: false } } : {}),
        ...(style ? style(i) : {}),
      }))],
      ...rest,
    };
    return new uPlot(opts, [x, ...series], box);
  }

  // Charts taken off the page: each uPlot destroyed (it keeps listeners and a place in uPlot's own lists), then
  // its box removed.
  function drop(plots) {
    for (const plot of plots.splice(0)) {
      const box = plot.root.parentElement;
      plot.destroy();
      box?.remove();
    }
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
    const weights = weightCharts(id);
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
      weights();
    };
    return events;
  }

  // A run's weights: a layer's distribution by epoch (the 5-95 and 25-75 percentile bands, the median), its
  // gradient norm and spread, and its histogram at the chosen epoch beside the first epoch's; drawn again
  // when the layer or the epoch is changed and when a new epoch arrives.
  function weightCharts(id) {
    const section = document.getElementById("weights");
    const select = document.getElementById("weights-layer"), slider = document.getElementById("weights-epoch");
    let plots = [], epochs = [], busy = false, again = false;
    async function draw() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        const params = new URLSearchParams();
        if (select.value) params.set("layer", select.value);
        if (slider.dataset.moved) params.set("epoch", slider.dataset.epoch);
        const w = await json(`/api/runs/${path(id)}/weights?${params}`);
        if (!w.layers.length) return;
        section.hidden = false;
        if (select.options.length !== w.layers.length) {
          select.replaceChildren(...w.layers.map((l) => new Option(`${l.name} ${JSON.stringify(l.shape)}`, l.name)));
          select.value = w.layer;
        }
        epochs = w.epochs;  // the slider moves over the epochs recorded (every histograms_every-th)
        const last = epochs[epochs.length - 1];
        Object.assign(slider, { min: 0, max: epochs.length - 1 });
        if (!slider.dataset.moved) slider.value = epochs.length - 1;
        document.getElementById("weights-shown").textContent = `epoch ${w.histogram?.epoch ?? "–"} of ${last}`;
        drop(plots);
        const q = w.quantiles, band = (hi, lo, a) => ({ series: [hi, lo], fill: `rgba(3,102,214,${a})` });
        plots = [
          chart(`${w.layer}: values by epoch`, w.epochs, [q.p5, q.p25, q.p50, q.p75, q.p95],
                ["p5", "p25", "median", "p75", "p95"], "epoch", "weights-charts", false,
                { bands: [band(5, 1, 0.12), band(4, 2, 0.25)] }),
          chart(`${w.layer}: gradient norm and spread`, w.epochs, [w.grad_norm, w.std], ["gradient norm", "std of values"],
                "epoch", "weights-charts"),
        ];
        const h = w.histogram;
        if (h) {  // the chosen epoch as bars, the first epoch as a line, on one grid of bins
          const series = [h.counts, ...(h.first ? [h.first] : [])];
          const labels = [`epoch ${h.epoch}`, ...(h.first ? [`epoch ${h.first_epoch}`] : [])];
          plots.push(chart(`${w.layer}: histogram`, h.centres, series, labels, "value", "weights-charts", false, {
            style: (i) => (i === 0 ? { fill: COLORS[0] + "55", paths: uPlot.paths.bars({ size: [1, 100] }), points: { show: false } }
                                    : { points: { show: false } }),
          }));
        }
      } catch (e) {
        section.hidden = false;
        document.getElementById("weights-shown").textContent = String(e);
      } finally {
        busy = false;
        if (again) { again = false; draw(); }
      }
    }
    if (!section) return () => {};
    select.addEventListener("change", draw);
    slider.addEventListener("input", () => {
      Object.assign(slider.dataset, { moved: "1", epoch: String(epochs[Number(slider.value)]) });
      draw();
    });
    draw();
    return draw;
  }

  // A value in 0..1 as a colour on a perceptually even scale (viridis's stops, interpolated).
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function colour(v) {
    const x = Math.min(Math.max(Number.isFinite(v) ? v : 0, 0), 1) * (STOPS.length - 1), i = Math.min(Math.floor(x), STOPS.length - 2);
    return STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * (x - i)));
  }

  // A matrix (rows of numbers) as a heat map on a canvas, each value scaled over the matrix's own range (or
  // an image's pixels, [rows][columns][channels] in 0..1); ``labels`` name the rows and the columns (written
  // beside and above them); ``hover(i, j)`` says what a cell is.
  function heatmap(matrix, title, side = 160, hover = null, labels = null) {
    const figure = document.createElement("figure"), canvas = document.createElement("canvas"), caption = document.createElement("figcaption");
    const rows = matrix.length, columns = matrix[0].length, cell = Math.max(1, Math.floor(side / Math.max(rows, columns)));
    const left = labels ? 90 : 0, top = labels ? 70 : 0;
    Object.assign(canvas, { width: left + columns * cell + (labels ? 60 : 0), height: top + rows * cell });
    const flat = matrix.flat(2).filter(Number.isFinite), low = Math.min(...flat), high = Math.max(...flat);
    const ctx = canvas.getContext("2d");
    matrix.forEach((row, i) => row.forEach((v, j) => {
      const rgb = Array.isArray(v) ? (v.length === 3 ? v.map((c) => Math.round(255 * c)) : Array(3).fill(Math.round(255 * v[0])))
                                   : colour(high > low ? (v - low) / (high - low) : 0.5);
      ctx.fillStyle = `rgb(${rgb.join(",")})`;
      ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
    }));
    if (labels) {
      ctx.fillStyle = "#1d2329";
      ctx.font = `${Math.min(12, Math.max(8, cell - 2))}px system-ui`;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      labels.forEach((text, i) => {
        ctx.fillText(text.slice(0, 14), left - 4, top + (i + 0.5) * cell);
        ctx.save();
        ctx.translate(left + (i + 0.5) * cell, top - 4);
        ctx.rotate(-Math.PI / 4);  // up and to the right, clear of the cells
        ctx.textAlign = "left";
        ctx.fillText(text.slice(0, 12), 0, 0);
        ctx.restore();
      });
    }
    caption.textContent = title;
    if (hover) canvas.addEventListener("mousemove", (e) => {
      const i = Math.floor((e.offsetY - top) / cell), j = Math.floor((e.offsetX - left) / cell);
      if (i >= 0 && j >= 0 && i < rows && j < columns) caption.textContent = `${title}: ${hover(i, j)}`;
    });
    figure.append(canvas, caption);
    return figure;
  }

  // A package's model on one held-out row: its prediction, and the attention of each layer and head over the
  // row's tokens (a transformer) or the image and the feature maps at the end of each block (a CNN).
  function insideMaps(id) {
    const rowInput = document.getElementById("inside-row"), facts = document.getElementById("inside-facts");
    const layer = document.getElementById("inside-layer"), head = document.getElementById("inside-head");
    const maps = document.getElementById("inside-maps");
    let found = null;
    function attention() {
      const weights = found.attention[Number(layer.value)], h = head.value;
      const matrix = h === "mean" ? weights[0].map((row, i) => row.map((_, j) => weights.reduce((s, w) => s + w[i][j], 0) / weights.length))
                                  : weights[Number(h)];
      const t = found.tokens;
      const which = h === "mean" ? "the mean of its heads" : `head ${Number(h) + 1}`;
      maps.replaceChildren(heatmap(matrix, `layer ${Number(layer.value) + 1}, ${which}: each token (row) attends over the tokens (columns)`,
        Math.min(640, Math.max(240, 16 * t.length)), (i, j) => `${t[i]} → ${t[j]}: ${matrix[i][j].toFixed(3)}`, t));
      const list = document.createElement("p");
      list.className = "tokens";
      const more = found.tokens_total > t.length ? `  … (the first ${t.length} of ${found.tokens_total} tokens)` : "";
      list.textContent = t.map((tok, k) => `${k}:${tok}`).join("  ") + more;
      maps.append(list);
    }
    async function load() {
      try {
        found = await json(`/api/inside/${path(id)}?row=${Number(rowInput.value) || 0}`);
      } catch (e) { facts.textContent = String(e); return; }
      rowInput.max = found.rows - 1;
      const top = Math.max(...found.scores);
      facts.textContent = `of ${found.rows}: predicted ${found.prediction} (score ${top.toFixed(3)}), label ${found.label}`;
      facts.className = String(found.prediction) === String(found.label) ? "ok" : "bad";
      maps.replaceChildren();
      if (found.attention.length) {
        document.getElementById("inside-controls").hidden = false;
        const heads = found.attention[0].length;
        if (layer.options.length !== found.attention.length) layer.replaceChildren(...found.attention.map((_, k) => new Option(String(k + 1), String(k))));
        if (head.options.length !== heads + 1) head.replaceChildren(new Option("mean", "mean"), ...found.attention[0].map((_, k) => new Option(String(k + 1), String(k))));
        attention();
      } else if (found.image) {
        const note = document.createElement("p");
        note.textContent = "Feature maps at the end of each block: the channels with the largest mean activation, largest first.";
        maps.append(heatmap(found.image, "the row's image", 160), note);
        found.feature_maps.forEach((block, b) => {
          const group = document.createElement("div");
          group.className = "block";
          group.append(...block.map((m, c) => heatmap(m, `block ${b + 1}, #${c + 1}`, 96)));
          maps.append(group);
        });
      }
    }
    rowInput.addEventListener("change", load);
    layer.addEventListener("change", attention);
    head.addEventListener("change", attention);
    load();
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

  // Named categories on the x axis (parameters): ticks at 0..n-1 labelled with the names.
  const named = (names, label) => ({ label, splits: () => names.map((_, i) => i), values: () => names });

  // Parameter importance (as the study's report weighs it: fANOVA, or PED-ANOVA past 1,000 trials) as bars, most
  // important first.
  const weighed = [];
  function importanceChart(found) {
    const pairs = Object.entries(found.importance).sort((a, b) => b[1] - a[1]);
    if (!pairs.length) return;
    const names = pairs.map(([n]) => n);
    drop(weighed);
    weighed.push(chart(`parameter importance (${found.method}, ${found.trials} complete trials)`, names.map((_, i) => i), [pairs.map(([, v]) => v)],
          ["importance"], "parameter", "importance", true, {
            axes: [named(names, "parameter"), {}], scales: { x: { time: false, range: [-0.5, names.length - 0.5] } },
          }));
  }

  // Parallel coordinates: an axis per parameter and the value, a line per trial (darker: better), each axis
  // labelled with its range or its categories.
  function parallelChart(p, direction) {
    if (!p.numbers.length) return;
    const x = p.axes.map((_, i) => i);
    const values = p.values, lo = Math.min(...values), hi = Math.max(...values);
    const good = (v) => (hi === lo ? 0.5 : direction === "maximize" ? (v - lo) / (hi - lo) : (hi - v) / (hi - lo));
    const order = p.numbers.map((_, k) => k).sort((a, b) => good(values[a]) - good(values[b]));  // best drawn last
    const series = order.map((k) => p.positions.map((axis) => axis[k]));
    const labels = order.map((k) => `trial ${p.numbers[k]}`);
    const shades = order.map((k) => { const g = good(values[k]); return `rgba(3,102,214,${(0.12 + 0.8 * g).toFixed(2)})`; });
    const ticks = {
      hooks: { draw: [(u) => {
        const ctx = u.ctx;
        ctx.save(); ctx.fillStyle = "#444"; ctx.font = `${11 * devicePixelRatio}px system-ui`;
        p.labels.forEach((axis, a) => axis.forEach(([at, text]) => {
          ctx.fillText(text, u.valToPos(a, "x", true) + 3, u.valToPos(at, "y", true));
        }));
        ctx.restore();
      }] },
    };
    return chart(`parallel coordinates (${p.numbers.length} of ${p.complete} complete trials; darker: better)`, x,
      series, labels, "parameter", "charts", false, {
        width: Math.max(440, 160 * p.axes.length), height: 300, legend: { show: false },
        scales: { x: { time: false, range: [-0.1, p.axes.length - 0.6] }, y: { range: [-0.05, 1.05] } },
        axes: [named(p.axes, "parameter"), { show: false }], plugins: [ticks],
        style: (i) => ({ stroke: shades[i], width: 1, points: { show: false } }),
      });
  }

  // A study: the value of each complete trial and the best so far, parameter importance, parallel
  // coordinates, the learning curves of the trials shown; read again every 5 s while it runs.
  async function studyCharts(id, intermediate, direction, live) {
    let weighing = false, drawing = false, timer = null;  // importance takes a while: its chart comes when ready
    const plots = [];
    async function draw() {
      if (drawing) return;  // a slow answer: the next tick waits for it
      drawing = true;
      try {
        if (!weighing) {
          weighing = true;
          json(`/api/studies/${path(id)}/importance`).then(importanceChart).catch(() => {}).finally(() => { weighing = false; });
        }
        const [h, p] = await Promise.all([json(`/api/studies/${path(id)}/history`), json(`/api/studies/${path(id)}/parameters`)]);
        drop(plots);
        if (h.number.length) plots.push(chart("optimisation history", h.number, [h.value, h.best], ["trial value", "best so far"], "trial"));
        const parallel = parallelChart(p, direction);
        if (parallel) plots.push(parallel);
        const trials = Object.keys(intermediate);
        if (trials.length) {
          const steps = [...new Set(trials.flatMap((t) => Object.keys(intermediate[t]).map(Number)))].sort((a, b) => a - b);
          const series = trials.map((t) => steps.map((s) => intermediate[t][String(s)] ?? null));
          plots.push(chart("intermediate values (trials on this page; pruned ones stop early)", steps, series, trials.map((t) => `trial ${t}`), "step"));
        }
        if (timer && h.status !== "running") clearInterval(timer);  // finished or stopped: nothing more comes
      } finally {
        drawing = false;
      }
    }
    await draw();
    if (live) timer = setInterval(draw, 5000);
  }

  // Watched servers: every 2 s, the rates and latency percentiles since the reading before, and the batch sizes.
  function servingCharts(count) {
    for (let i = 0; i < count; i++) {
      const t = [], rates = [[], [], []], latency = [[], [], []], cpu = [], memory = [];
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
            chart("server process: CPU cores busy", [], [[]], ["cores"], "seconds", `server-${i}-charts`),
            chart("server process: resident memory (MB)", [], [[]], ["MB"], "seconds", `server-${i}-charts`),
          ];
        }
        const iv = reading.interval;
        if (iv && iv.requests_per_s !== null) {
          t.push(Math.round(s.time - started));
          [iv.requests_per_s, iv.errors_per_s, iv.rows_per_s].forEach((v, k) => rates[k].push(v));
          [iv.p50, iv.p95, iv.p99].forEach((v, k) => latency[k].push(v === null ? null : v * 1000));
          cpu.push(iv.cpu_cores);
          memory.push(s.memory_bytes === null ? null : s.memory_bytes / 1e6);
          plots[0].setData([t.slice(), ...rates.map((r) => r.slice())]);
          plots[1].setData([t.slice(), ...latency.map((r) => r.slice())]);
          plots[3].setData([t.slice(), cpu.slice()]);
          plots[4].setData([t.slice(), memory.slice()]);
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

  // Build a recipe: a form made from the recipe's JSON schema. A field left empty takes its default; every
  // change is checked by the server (the messages of `seekforge validate`), shown at its field, and the
  // recipe shown as YAML. "save and run" saves it and starts `seekforge run`, then opens the new run's page.
  async function recipeBuilder() {
    const schema = await json("/api/schema/recipe");
    const defs = schema.$defs || {};
    const resolve = (s) => (s && s.$ref ? defs[s.$ref.split("/").pop()] : s) || {};
    const form = document.getElementById("recipe-form");
    let draft = { name: "my-recipe", data: {}, features: { inputs: [], output: {} }, model: { type: "mlp" } };
    let timer = null;

    const el = (tag, attrs = {}, ...children) => {
      const node = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs)) if (v !== undefined) node.setAttribute(k, v);
      for (const child of children) node.append(child);
      return node;
    };
    const clean = (v) => (v === undefined || v === "" || (Array.isArray(v) && !v.length) ? undefined : v);
    const typed = (options) => options.filter((o) => o.properties && o.properties.type && o.properties.type.const !== undefined);

    // One input for a value of schema `s` at `path`; `set` receives the new value (undefined: not set).
    function field(s, value, path, set) {
      s = resolve(s);
      const options = (s.anyOf || s.oneOf || []).map(resolve);
      if (options.length) {
        const nullable = options.some((o) => o.type === "null");
        const objects = typed(options);
        const others = options.filter((o) => o.type !== "null" && !objects.includes(o) && !(o.enum && objects.length));
        if (objects.length && !others.length) {
          const select = el("select", { "data-path": path });
          select.append(el("option", { value: "" }, nullable || !value ? "(not set)" : ""));
          for (const o of objects) select.append(el("option", { value: o.properties.type.const }, o.properties.type.const));
          const current = value && typeof value === "object" ? value.type : value;
          select.value = current || "";
          const box = el("div", {}, select);
          if (current) {
            const chosen = objects.find((o) => o.properties.type.const === current);
            if (chosen) box.append(object(chosen, typeof value === "object" ? value : { type: current }, path, set, true));
          }
          select.addEventListener("change", () => set(select.value ? { type: select.value } : undefined, true));
          return box;
        }
        if (nullable && others.length === 1 && resolve(others[0]).properties) {
          const box = el("div");
          const on = el("input", { type: "checkbox", "data-path": path, "aria-label": `use ${path}` });
          on.checked = value !== undefined && value !== null;
          box.append(on, " use this section");
          if (on.checked) box.append(object(resolve(others[0]), value, path, set));
          on.addEventListener("change", () => set(on.checked ? {} : undefined, true));
          return box;
        }
        if (others.length === 1) return field(others[0], value, path, set);
        return scalar({ type: "json" }, value, path, set);
      }
      if (s.properties) return object(s, value, path, set);
      const items = s.type === "array" && !s.prefixItems ? resolve(s.items) : null;
      if (items && (items.properties || items.oneOf || items.anyOf)) {
        return list(s, value || [], path, set);
      }
      return scalar(s, value, path, set);
    }

    function object(s, value, path, set, skipType = false) {
      value = value && typeof value === "object" ? value : {};
      const box = el("fieldset", { "data-path": path });
      if (path) box.append(el("legend", {}, path.split(".").pop()));
      if (s.description) box.append(el("div", { class: "hint" }, s.description.split("\n")[0]));
      for (const [key, sub] of Object.entries(s.properties || {})) {
        if (skipType && key === "type") continue;
        const where = path ? `${path}.${key}` : key;
        const row = el("div", { class: "field" }, el("label", { for: where }, key));
        row.append(field(sub, value[key], where, (v, rerender) => {
          const next = { ...value };
          if (clean(v) === undefined) delete next[key]; else next[key] = v;
          set(next, rerender);
        }));
        const r = resolve(sub);
        const hint = [r.description || sub.description, sub.default !== undefined && sub.default !== null && typeof sub.default !== "object" ? `default ${JSON.stringify(sub.default)}` : ""].filter(Boolean).join(" · ");
        if (hint) row.append(el("div", { class: "hint" }, hint.split("\n")[0]));
        box.append(row);
      }
      return box;
    }

    function list(s, items, path, set) {
      const box = el("div", { "data-path": path });
      items.forEach((item, i) => {
        const where = `${path}.${i}`;
        const entry = el("div", { class: "item" });
        entry.append(field(s.items, item, where, (v, rerender) => { const next = items.slice(); next[i] = v; set(next, rerender); }));
        const remove = el("button", { type: "button" }, "remove");
        remove.addEventListener("click", () => set(items.filter((_, k) => k !== i), true));
        entry.append(remove);
        box.append(entry);
      });
      const add = el("button", { type: "button", "data-add": path }, "add");
      add.addEventListener("click", () => set([...items, {}], true));
      box.append(add);
      return box;
    }

    function scalar(s, value, path, set) {
      let input;
      if (s.enum || s.const !== undefined) {
        input = el("select", { id: path, "data-path": path }, el("option", { value: "" }, "(default)"));
        for (const option of s.enum || [s.const]) input.append(el("option", { value: JSON.stringify(option) }, String(option)));
        input.value = value === undefined ? "" : JSON.stringify(value);
        input.addEventListener("change", () => set(input.value ? JSON.parse(input.value) : undefined));
      } else if (s.type === "boolean") {
        input = el("select", { id: path, "data-path": path }, el("option", { value: "" }, "(default)"), el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"));
        input.value = value === undefined ? "" : String(value);
        input.addEventListener("change", () => set(input.value === "" ? undefined : input.value === "true"));
      } else {
        const number = s.type === "integer" || s.type === "number";
        input = el("input", { id: path, "data-path": path, type: number ? "number" : "text", step: s.type === "integer" ? "1" : "any",
                              placeholder: s.default !== undefined && s.default !== null ? JSON.stringify(s.default) : "" });
        const plain = typeof value === "string" || typeof value === "number";
        input.value = value === undefined ? "" : plain && s.type !== "json" && s.type !== "array" ? String(value) : JSON.stringify(value);
        input.addEventListener("input", () => {
          const text = input.value.trim();
          if (!text) return set(undefined);
          if (number) return set(Number(text));
          if (s.type === "array" || s.type === "json") { try { return set(JSON.parse(text)); } catch { return set(text); } }
          return set(text);
        });
      }
      return input;
    }

    function render() {
      form.replaceChildren(object(schema, draft, "", (v, rerender) => { draft = v; if (rerender) render(); changed(); }));
    }

    async function check() {
      const response = await fetch("/api/recipes/check", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(draft) });
      const found = await response.json();
      document.getElementById("recipe-yaml").textContent = found.yaml;
      form.querySelectorAll(".problem").forEach((p) => p.remove());
      const list = document.getElementById("problems");
      list.replaceChildren(...(found.problems.length ? found.problems.map((p) => el("li", { class: "path" }, `${p.path || "recipe"}: ${p.message}${p.suggestion ? `; did you mean '${p.suggestion}'?` : ""}`)) : [el("li", {}, "none: the recipe is valid")]));
      for (const p of found.problems) {
        let at = null, path = p.path;
        while (path && !(at = form.querySelector(`[data-path="${CSS.escape(path)}"]`))) path = path.split(".").slice(0, -1).join(".");
        const where = (at && (at.closest(".field") || at)) || form;
        where.append(el("div", { class: "problem" }, p.message));
      }
      document.getElementById("run-button").disabled = found.problems.length > 0;
    }
    function changed() { clearTimeout(timer); timer = setTimeout(check, 250); }

    document.getElementById("run-button").addEventListener("click", async () => {
      const status = document.getElementById("run-status");
      const response = await fetch("/api/recipes/run", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(draft) });
      const found = await response.json();
      if (!response.ok) { status.textContent = "the recipe has problems"; return check(); }
      status.textContent = `saved ${found.recipe}; started (process ${found.pid}); waiting for its run folder…`;
      const name = encodeURIComponent(found.name);
      for (let i = 0; i < 240; i++) {
        const runs = await json(`/api/runs?q=${name}&sort=started&order=desc&limit=1`);
        const run = runs.runs.find((r) => r.name === found.name && r.stamp >= found.started);
        if (run) { location.href = `/runs/${path(run.id)}`; return; }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      status.textContent = `no run folder yet: see ${found.log}`;
    });

    const source = document.getElementById("data-source"), label = document.getElementById("label-column");
    document.getElementById("preview-button").addEventListener("click", async () => {
      const problem = document.getElementById("data-problem"), shown = document.getElementById("data-preview");
      problem.textContent = "";
      const response = await fetch(`/api/data/preview?source=${encodeURIComponent(source.value)}`);
      const found = await response.json();
      if (!response.ok) { problem.textContent = found.detail; return; }
      label.replaceChildren(...found.columns.map((c) => el("option", { value: c.name }, c.name)));
      label.value = found.columns[found.columns.length - 1].name;
      document.getElementById("draft-button").disabled = false;
      const head = el("tr", {}, ...found.columns.map((c) => el("th", { title: `${c.distinct} distinct, ${(100 * c.missing).toFixed(0)}% missing` }, `${c.name} (${c.type})`)));
      const rows = found.rows.map((r) => el("tr", {}, ...r.map((v) => el("td", {}, v === null ? "" : v))));
      shown.replaceChildren(el("p", {}, `${found.rows_total} rows; the first ${found.rows.length}:`), el("table", { class: "runs" }, el("thead", {}, head), el("tbody", {}, ...rows)));
    });
    document.getElementById("draft-button").addEventListener("click", async () => {
      const response = await fetch(`/api/data/draft?source=${encodeURIComponent(source.value)}&label=${encodeURIComponent(label.value)}`);
      const found = await response.json();
      if (!response.ok) { document.getElementById("data-problem").textContent = found.detail; return; }
      draft = found;
      render();
      changed();
    });
    render();
    check();
  }

  function compareBoxes() {
    const form = document.getElementById("compare");
    const button = document.getElementById("compare-button");
    const chosen = () => [...form.querySelectorAll("input[name=run]:checked")].map((box) => box.value);
    form.addEventListener("change", () => { const n = chosen().length; button.disabled = n < 2 || n > 8; });
    button.addEventListener("click", () => { location.href = `/compare?ids=${chosen().map(encodeURIComponent).join(",")}`; });
  }

  return { runCharts, compareCharts, compareBoxes, driftTables, insideMaps, recipeBuilder, servingCharts, studyCharts };
})();
