// Harmony dashboard: reads the REST API with the token the user gives; refreshes itself.
"use strict";

const REFRESH_MS = 30000;
const TOKEN_KEY = "harmony.token";
const state = { token: "", pools: [], selected: null, timer: null };

function readFragment() {
  // "#token=...&pool=ns/name" lets a link (or a test) open a pool; the token leaves the URL.
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (params.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  state.token = sessionStorage.getItem(TOKEN_KEY) || "";
  if (params.get("pool")) state.selected = params.get("pool");
}

function showMessage(text) {
  const box = document.getElementById("message");
  box.textContent = text || "";
  box.hidden = !text;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function fmt(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

function percent(value) {
  return value === null || value === undefined ? "–" : (100 * value).toFixed(2) + "%";
}

// Every time on the page is UTC, as the API gives it; the table headers say so.
function time(iso) {
  return new Date(iso).toISOString().replace("T", " ").slice(0, 16);
}

function span(fromIso, untilIso) {
  const from = time(fromIso);
  const until = time(untilIso);
  const sameDay = from.slice(0, 10) === until.slice(0, 10);
  return from + " – " + (sameDay ? until.slice(11) : until) + " UTC";
}

// A wait in seconds as people read it; null with work queued means no replica is usable.
function wait(seconds, backlog) {
  if (seconds === null || seconds === undefined) {
    return backlog ? "unbounded (no usable replica)" : "–";
  }
  if (seconds < 120) return fmt(seconds, 0) + " s";
  if (seconds < 7200) return fmt(seconds / 60, 1) + " min";
  return fmt(seconds / 3600, 1) + " h";
}

function queueStats(queue) {
  const estimated = queue.backlog_source === "FluidEstimate" ? " (estimated)" : "";
  return [
    stat("SLA", "queue: wait ≤ " + queue.max_delay),
    stat("backlog" + estimated, fmt(queue.backlog)),
    stat("estimated wait", wait(queue.estimated_wait_seconds, queue.backlog)),
  ];
}

function replicaHours(value) {
  return value === null || value === undefined ? "–" : fmt(value, 1) + " replica-h";
}

function savingsRange(savings) {
  // The figures cover the recorded decisions only, often far less than the range asked for.
  if (!savings.decisions) return "no decisions recorded in " + span(savings.since, savings.until);
  const asked = (Date.parse(savings.until) - Date.parse(savings.since)) / 3600000;
  const other = asked - savings.hours_covered;
  const text = "over " + fmt(savings.hours_covered, 1) + " h of recorded decisions, " +
    span(savings.covered_from, savings.covered_until);
  return other < 0.05 ? text : text + " (none in the other " + fmt(other, 1) + " h of the last " + fmt(asked, 1) + " h)";
}

function stat(label, value) {
  const box = element("div", null, "stat");
  box.append(element("span", label, "muted"), element("b", value));
  return box;
}

async function loadPools() {
  const pools = [];
  let cursor = null;
  do {
    const query = "/api/v1/pools?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    const page = await api(query);
    pools.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && pools.length < 5000);
  state.pools = pools;
  const list = document.getElementById("pools");
  list.replaceChildren();
  for (const pool of pools) {
    const key = pool.namespace + "/" + pool.name;
    const item = element("li");
    item.dataset.pool = key;
    if (key === state.selected) item.classList.add("selected");
    const ready = pool.ready === null ? "" : pool.ready ? "ready" : "not ready";
    item.append(
      element("span", pool.replicas === null ? "–" : pool.replicas + " → " + fmt(pool.recommended_replicas, 0), "replicas"),
      element("div", pool.name),
      element("span", pool.namespace + " · " + (pool.mode || "?") + " ", "ns"),
    );
    if (ready) item.append(element("span", ready, "badge " + (pool.ready ? "ok" : "bad")));
    item.addEventListener("click", () => selectPool(key));
    list.append(item);
  }
  if (!pools.length) list.append(element("li", "no pools recorded yet", "muted"));
  if (!state.selected && pools.length) state.selected = pools[0].namespace + "/" + pools[0].name;
}

function selectPool(key) {
  state.selected = key;
  for (const item of document.querySelectorAll("#pools li")) {
    item.classList.toggle("selected", item.dataset.pool === key);
  }
  history.replaceState(null, "", "#pool=" + key);
  refresh();
}

async function optional(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

function bandTraces(forecast) {
  if (!forecast || !forecast.steps.length) return [];
  const x = forecast.steps.map((step) => step.at);
  const column = (level) => {
    let best = 0;
    forecast.levels.forEach((value, index) => {
      if (Math.abs(value - level) < Math.abs(forecast.levels[best] - level)) best = index;
    });
    return forecast.steps.map((step) => step.values[best]);
  };
  const lowest = forecast.levels[0];
  const highest = forecast.levels[forecast.levels.length - 1];
  const outer = Math.round((highest - lowest) * 100);
  const line = { width: 0 };
  return [
    { x, y: column(lowest), mode: "lines", line, showlegend: false, hoverinfo: "skip" },
    { x, y: column(highest), mode: "lines", line, fill: "tonexty", fillcolor: "rgba(51,102,204,0.18)", name: "forecast " + outer + "% band" },
    { x, y: column(0.25), mode: "lines", line, showlegend: false, hoverinfo: "skip" },
    { x, y: column(0.75), mode: "lines", line, fill: "tonexty", fillcolor: "rgba(51,102,204,0.32)", name: "forecast 50% band" },
    { x, y: column(0.5), mode: "lines", line: { color: "#3366cc", dash: "dash", width: 1.5 }, name: "forecast median" },
  ];
}

async function drawChart(key, history, forecast) {
  const traces = [
    ...bandTraces(forecast),
    { x: history.times, y: history.demand, mode: "lines", name: "demand", line: { color: "#1d2330", width: 1.5 } },
    { x: history.times, y: history.usable_capacity, mode: "lines", name: "usable capacity", line: { color: "#2ca02c", shape: "hv", width: 2 } },
  ];
  if (history.backlog) {
    traces.push({ x: history.times, y: history.backlog, mode: "lines", name: "backlog (queued work)", line: { color: "#d62728", shape: "hv", width: 1.5 } });
  }
  const layout = {
    margin: { l: 50, r: 20, t: 30, b: 70 },
    title: { text: "demand, usable capacity and forecast — " + key, font: { size: 13 } },
    legend: { orientation: "h", y: -0.28 },
    xaxis: { type: "date", title: { text: "time (UTC)" } },
    yaxis: { title: { text: forecast ? forecast.indicator : "demand" }, rangemode: "tozero" },
  };
  const chart = document.getElementById("chart");
  await Plotly.react(chart, traces, layout, { displaylogo: false, responsive: true });
  chart.dataset.forecastBand = String(Boolean(forecast && forecast.steps.length));
}

function fillTable(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  for (const cells of rows) {
    const row = element("tr");
    for (const [text, cls] of cells) row.append(element("td", text, cls));
    body.append(row);
  }
}

async function readinessOf(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error.status === 409) return { unavailable: error.message };
    throw error;
  }
}

function pair(left, right) {
  return left + " / " + right;
}

function showReadiness(readiness) {
  const verdict = document.getElementById("readiness-verdict");
  const message = document.getElementById("readiness-message");
  if (readiness.unavailable) {
    verdict.textContent = "unknown";
    verdict.className = "badge";
    message.textContent = readiness.unavailable;
    document.getElementById("readiness").replaceChildren();
    fillTable("readiness-days", []);
    return;
  }
  verdict.textContent = readiness.ready ? "EnforceReady" : readiness.reason;
  verdict.className = "badge " + (readiness.ready ? "ok" : readiness.sla_held ? "" : "bad");
  message.textContent = readiness.message;
  const rec = readiness.recommended;
  const ran = readiness.actual;
  document.getElementById("readiness").replaceChildren(
    stat("observed demand", fmt(readiness.observed_days, 2) + " of " + fmt(readiness.min_days, 2) + " days"),
    stat("replica-hours: Harmony / ran", pair(replicaHours(rec.replica_hours), replicaHours(ran.replica_hours))),
    stat("shortfall: Harmony / ran (SLA " + percent(readiness.sla_epsilon) + ")", pair(percent(rec.shortfall_rate), percent(ran.shortfall_rate))),
    stat("actions a day: Harmony / ran", pair(fmt(rec.actions_per_day, 1), fmt(ran.actions_per_day, 1))),
  );
  fillTable("readiness-days", readiness.days.map((day) => [
    [day.day, "num"], [fmt(day.observed_days * 24, 1) + " h", "num"],
    [pair(replicaHours(day.recommended.replica_hours), replicaHours(day.actual.replica_hours)), "num"],
    [pair(percent(day.recommended.shortfall_rate), percent(day.actual.shortfall_rate)), "num"],
    [pair(fmt(day.recommended.actions_per_day, 1), fmt(day.actual.actions_per_day, 1)), "num"],
  ]));
}

async function showPool(key) {
  const base = "/api/v1/pools/" + key.split("/").map(encodeURIComponent).join("/");
  const [detail, history, forecast, decisions, actions, savings, readiness] = await Promise.all([
    api(base),
    api(base + "/history?max_points=720"),
    optional(base + "/forecast"),
    api(base + "/decisions?limit=20"),
    api(base + "/actions?limit=20"),
    api(base + "/savings"),
    readinessOf(base + "/readiness"),
  ]);
  document.getElementById("pool").hidden = false;
  document.getElementById("pool-title").textContent = key;
  const latest = detail.latest_decision;
  const queue = detail.queue;
  // For a queue SLA the engine's probability is that some work waits longer than maxDelay.
  const risk = queue ? "P(late work)" : "P(shortfall)";
  const stats = [
    stat("mode", detail.mode || "–"),
    stat("replicas now", fmt(detail.replicas, 0)),
    stat("recommended", fmt(detail.recommended_replicas, 0)),
    stat(risk, percent(latest ? latest.shortfall_probability : detail.shortfall_probability)),
    ...(queue ? queueStats(queue) : []),
    stat("target", detail.target.kind + "/" + detail.target.name),
  ];
  document.getElementById("decisions-risk").textContent = risk;
  document.getElementById("decisions-backlog").hidden = !queue;
  for (const condition of detail.conditions) stats.push(stat(condition.type, condition.status));
  document.getElementById("pool-stats").replaceChildren(...stats);
  await drawChart(key, history, forecast);
  const saved = (baseline) => baseline && baseline.replica_hours !== null
    ? replicaHours(baseline.saved_replica_hours) + " (" + percent(baseline.saved_fraction) + ")" : "–";
  document.getElementById("savings").replaceChildren(
    stat("replica-hours used", replicaHours(savings.used_replica_hours)),
    stat("static peak (" + fmt(savings.static_peak.replicas, 0) + " replicas)", replicaHours(savings.static_peak.replica_hours)),
    stat("saved vs static peak", saved(savings.static_peak)),
    stat("reactive baseline", replicaHours(savings.reactive && savings.reactive.replica_hours)),
    stat("saved vs reactive", saved(savings.reactive)),
  );
  document.getElementById("savings-range").textContent = savingsRange(savings);
  const notes = document.getElementById("savings-notes");
  notes.textContent = savings.notes.join("; ");
  notes.hidden = !savings.notes.length;
  showReadiness(readiness);
  fillTable("decisions", decisions.items.map((d) => [
    [time(d.cycle_at), "num"], [d.policy], [d.replicas_now + " → " + d.replicas_wanted, "num"],
    [percent(d.shortfall_probability), "num"],
    ...(queue ? [[fmt(d.inputs.backlog) + " (" + wait(d.inputs.estimated_wait_seconds, d.inputs.backlog) + ")", "num"]] : []),
    [d.binding_constraint], [d.reason],
  ]));
  fillTable("actions", actions.items.map((a) => [
    [time(a.created_at), "num"], [a.from_replicas + " → " + a.to_replicas, "num"], [a.result], [a.message],
  ]));
}

async function refresh() {
  clearTimeout(state.timer);
  if (!state.token) {
    showMessage("Enter an API token (one of HARMONY_API_TOKENS) to see the pools.");
    document.body.dataset.state = "needs-token";
    return;
  }
  try {
    await loadPools();
    if (state.selected) await showPool(state.selected);
    showMessage("");
    document.getElementById("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
    document.body.dataset.state = "ready";
  } catch (error) {
    showMessage(error.status === 401 ? "The token was refused: " + error.message : "Error: " + error.message);
    document.body.dataset.state = "error";
  }
  state.timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  readFragment();
  document.getElementById("token").value = state.token;
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = document.getElementById("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    refresh();
  });
  refresh();
});
