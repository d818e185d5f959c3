// A node's trend over a week, a month or any range: one metric day by day, with its running
// total (累计) since a chosen day when it is a flow, and the period's totals, each metric
// folded over the days by its catalogue aggregation (a flow sums, a stock is its last day's).
"use strict";

const state = { node: null, me: null, catalogue: null, series: null, plot: null };
const COUNTS = ["expected", "reported", "zero", "late", "missing"];

function iso(d) { return d.toISOString().slice(0, 10); }
function addDays(day, n) { const d = new Date(`${day}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + n); return iso(d); }

// The same periods as the API's (shared/periods.py): Monday to Sunday, the calendar month,
// never past today.
function preset(kind, today) {
  const d = new Date(`${today}T00:00:00Z`);
  if (kind === "week") return [addDays(today, -((d.getUTCDay() + 6) % 7)), today];
  if (kind === "month") return [`${today.slice(0, 8)}01`, today];
  return [addDays(today, -29), today];
}

function metricOf(code) { return state.catalogue.metrics.find((m) => m.code === code); }

function foldName(m) {
  return t(`over_days_${m.over_days}`);
}

async function start() {
  applyI18n();
  await signInFromHash();
  try {
    state.me = await api("/api/me");
    state.catalogue = await api("/api/catalogue");
  } catch (error) {
    if (error.status === 401) { location.href = "/"; return; }
    throw error;
  }
  const p = new URLSearchParams(location.search);
  state.node = p.get("node") || state.me.scope;
  const [s, e] = p.get("period") ? preset(p.get("period"), state.me.today) : preset("last30", state.me.today);
  $("start").value = p.get("start") || s;
  $("end").value = p.get("end") || e;
  $("since").value = p.get("since") || "";
  state.wanted = p.get("metric") || "fever";
  await load();
}

async function load() {
  const q = new URLSearchParams({ start: $("start").value, end: $("end").value });
  if ($("since").value) q.set("since", $("since").value);
  $("error").hidden = true;
  try {
    state.series = await api(`/api/series/${state.node}?${q}`);
  } catch (error) {
    $("error").hidden = false;
    $("error").textContent = error.errors && error.errors.length ? message(error.errors[0]) : error.message;
    return;
  }
  const shown = new URLSearchParams({ node: state.node, start: $("start").value, end: $("end").value,
    metric: state.wanted });
  if ($("since").value) shown.set("since", $("since").value);
  history.replaceState(null, "", `/trend?${shown}`);
  const range = `start=${state.series.start}&end=${state.series.end}`;
  $("summary").href = `/summary?node=${state.node}&${range}`;
  $("xlsx").href = `/api/summary/${state.node}/xlsx?${range}`;
  render();
}

function render() {
  const s = state.series;
  document.title = `${s.name || s.node} · ${t("trend_title")}`;
  $("title").textContent = `${s.name || s.node}${LANG === "zh" ? "" : " · "}${t("trend_title")}`;
  $("span").textContent = `${s.start} ~ ${s.end}` + (s.since !== s.start ? ` · ${t("since")} ${s.since}` : "");
  // The metrics the period has figures for, fever and flu-like cases always.
  const seen = new Set(["fever", "ili", ...Object.keys(s.totals.values)]);
  const metrics = state.catalogue.metrics.filter((m) => seen.has(m.code));
  if (!seen.has(state.wanted)) state.wanted = "fever";
  fill($("metric"), metrics.map((m) => el("option", { value: m.code, selected: m.code === state.wanted },
    `${metricName(m)}(${foldName(m)})`)));
  chart(metricOf(state.wanted));
  totals(metrics);
}

function chart(m) {
  const s = state.series;
  const xs = s.series.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
  const daily = s.series.map((d) => d.values[m.code] ?? (m.over_days === "sum" ? 0 : null));
  const flow = m.over_days === "sum";
  const data = [xs, daily];
  const series = [{}, { label: `${metricName(m)} · ${t("daily")}`, stroke: "#b3202a", width: 2,
    fill: "rgba(179,32,42,0.08)", points: { show: true, size: 5 } }];
  if (flow) {
    data.push(s.series.map((d) => d.running[m.code] || 0));
    series.push({ label: `${t("running_total")}`, stroke: "#1d4570", width: 2, dash: [6, 4], scale: "run" });
  }
  if (xs.length === 1) {
    // One day has no extent of its own: the days either side, empty, give it one.
    data[0] = [xs[0] - 86400, xs[0], xs[0] + 86400];
    for (let i = 1; i < data.length; i++) data[i] = [null, data[i][0], null];
  }
  const box = $("chart");
  const width = Math.max(320, box.clientWidth || 900);
  const dayOf = (v) => new Date(v * 1000).toISOString().slice(0, 10);
  series[0] = { label: t("day"), value: (u, v) => (v == null ? "--" : dayOf(v)) };
  const opts = {
    width, height: 320, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    series, legend: { live: true },
    axes: [
      // Reporting days, never hours: ticks a day, a week or a month apart.
      { space: 50, incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400],
        values: (u, vals) => vals.map((v) => dayOf(v).slice(5)) },
      { label: LANG === "zh" ? m.measure_zh : m.measure_en },
      ...(flow ? [{ scale: "run", side: 1, grid: { show: false }, label: t("running_total") }] : [])],
    // Half a day either side, so that a single day still has a place on the axis.
    scales: { x: { time: true, range: (u, min, max) => [min - 43200, max + 43200] },
      y: { range: (u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] },
      ...(flow ? { run: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } } : {}) },
  };
  if (state.plot) state.plot.destroy();
  box.replaceChildren();
  state.plot = new uPlot(opts, data, box);
  box.dataset.metric = m.code;
  box.dataset.points = String(s.series.length);
  $("chart-note").textContent = flow ? t("flow_note") : t("stock_note");
}

function totals(metrics) {
  const s = state.series, c = s.totals.completeness;
  const last = s.series[s.series.length - 1];
  const rows = metrics.map((m) => el("tr", { "data-metric": m.code },
    el("td", {}, metricName(m)), el("td", {}, foldName(m)),
    el("td", { class: "n total-value" }, num(s.totals.values[m.code] ?? 0)),
    el("td", { class: "n running-value" }, m.over_days === "sum" ? num((last && last.running[m.code]) || 0) : "—"),
    el("td", {}, LANG === "zh" ? m.measure_zh : m.measure_en)));
  fill($("totals"),
    el("table", { class: "table", id: "totals-table" },
      el("thead", {}, el("tr", {}, [t("metric"), t("fold"), t("period_total"), t("running_total"), t("measure")]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    el("p", { class: "muted", id: "completeness" },
      `${t("unit_days")}: ` + COUNTS.map((k) => `${t(k)} ${num(c[k])}`).join(" · ")
      + ` · ${t("reporting_rate")} ${pct(c.reporting_rate)} · ${t("on_time_rate")} ${pct(c.on_time_rate)}`));
}

document.querySelectorAll("[data-period]").forEach((b) => b.addEventListener("click", () => {
  const [s, e] = preset(b.dataset.period, state.me.today);
  $("start").value = s; $("end").value = e;
  load();
}));
$("controls").addEventListener("submit", (event) => { event.preventDefault(); load(); });
$("metric").addEventListener("change", () => { state.wanted = $("metric").value; chart(metricOf(state.wanted));
  const q = new URLSearchParams(location.search); q.set("metric", state.wanted); history.replaceState(null, "", `/trend?${q}`); });
langButton(() => { if (state.series) render(); });
window.addEventListener("resize", () => { if (state.plot) state.plot.setSize({ width: Math.max(320, $("chart").clientWidth), height: 320 }); });

start();
