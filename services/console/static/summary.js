// The summary (日报/周报/月报/通报) of a node for a day, a week, a month or a range, laid out to
// be printed, signed and sent upward.
"use strict";

let doc = null;

async function start() {
  applyI18n();
  await signInFromHash();
  const p = new URLSearchParams(location.search);
  let node = p.get("node");
  // What the page covers, passed on as it was asked: day, or period and day, or start and end.
  const span = new URLSearchParams();
  for (const key of ["day", "period", "start", "end"]) if (p.get(key)) span.set(key, p.get(key));
  try {
    if (!node) node = (await api("/api/me")).scope;
    doc = await api(`/api/summary/${node}${span.size ? `?${span}` : ""}`);
  } catch (error) {
    if (error.status === 401) { location.href = "/"; return; }
    fill($("doc"), el("p", { class: "field-error" },
      error.errors.length ? message(error.errors[0]) : error.message));
    return;
  }
  const asked = doc.period === "day" ? `day=${doc.day}`
    : doc.period === "range" ? `start=${doc.start}&end=${doc.end}` : `period=${doc.period}&day=${doc.start}`;
  $("csv").href = `/api/summary/${doc.node}/csv?${asked}`;
  $("xlsx").href = `/api/summary/${doc.node}/xlsx?${asked}`;
  render();
}

$("print").addEventListener("click", () => window.print());
langButton(() => { if (doc) render(); });

const COUNTS = ["expected", "reported", "zero", "late", "missing", "pending", "exempt"];

function spanText(d) {
  return d.start === d.end ? d.start : `${d.start} ~ ${d.end}`;
}

function titleOf(d) {
  return t(`summary_title_${d.period}`);
}

// The lines a paper template is signed on, as on the spreadsheet.
function foot() {
  return el("footer", { class: "doc-foot" },
    el("p", { class: "doc-notes" }, `${t("doc_notes")}:`),
    el("div", { class: "signatures" }, ["signed_by", "checked_by", "signed_at", "seal"].map((k) =>
      el("span", { class: "signature" }, `${t(k)}:`))));
}

function lead(d) {
  const total = d.rows[0], v = total.values, a = d.alert_counts;
  if (d.start !== d.end) {
    return LANG === "zh"
      ? `${spanText(d)},${d.name}应报 ${total.expected} 单位·日,已报 ${total.reported},迟报 ${total.late},漏报 ${total.missing},`
        + `报告率 ${pct(total.reporting_rate)},及时率 ${pct(total.on_time_rate)}。`
        + `报告发热病例 ${num(v.fever || 0)} 例、流感样病例 ${num(v.ili || 0)} 例;期末居家观察 ${num(v.home_observation || 0)} 人。`
        + `期间预警 ${a.total} 起。`
      : `From ${d.start} to ${d.end}, ${total.expected} unit-days of ${d.name} were due: ${total.reported} reported, `
        + `${total.late} late, ${total.missing} missing; reporting rate ${pct(total.reporting_rate)}, on-time rate `
        + `${pct(total.on_time_rate)}. Fever cases ${num(v.fever || 0)}, flu-like cases ${num(v.ili || 0)}; under home `
        + `observation at the end ${num(v.home_observation || 0)}. Alerts of the period: ${a.total}.`;
  }
  if (LANG === "zh") {
    return `${d.day},${d.name}应报单位 ${total.expected} 家,已报 ${total.reported} 家(其中零报告 ${total.zero} 家),`
      + `迟报 ${total.late} 家,漏报 ${total.missing} 家,待报 ${total.pending} 家,免报 ${total.exempt} 家,`
      + `报告率 ${pct(total.reporting_rate)},及时率 ${pct(total.on_time_rate)}。`
      + `报告发热病例 ${num(v.fever || 0)} 例、流感样病例 ${num(v.ili || 0)} 例、因病缺勤 ${num(v.sick_absence || 0)} 人;`
      + `居家观察 ${num(v.home_observation || 0)} 人,集中隔离 ${num(v.central_isolation || 0)} 人。`
      + `当日预警 ${a.total} 起,其中待处置 ${a.open || 0} 起、已确认 ${a.acknowledged || 0} 起、已办结 ${a.closed || 0} 起`
      + (a.overdue ? `,超时未处置 ${a.overdue} 起。` : "。");
  }
  return `On ${d.day}, ${total.expected} units of ${d.name} were due to report: ${total.reported} reported `
    + `(${total.zero} zero reports), ${total.late} late, ${total.missing} missing, ${total.pending} pending, `
    + `${total.exempt} exempt; reporting rate `
    + `${pct(total.reporting_rate)}, on-time rate ${pct(total.on_time_rate)}. Fever cases ${num(v.fever || 0)}, `
    + `flu-like cases ${num(v.ili || 0)}, sick absences ${num(v.sick_absence || 0)}. Alerts of the day: ${a.total} `
    + `(${a.open || 0} open, ${a.acknowledged || 0} acknowledged, ${a.closed || 0} closed${a.overdue ? `, ${a.overdue} overdue` : ""}).`;
}

// Nodes below a minimum reserve (the catalogue's stock levels): only when there are some.
function belowMinimum(d) {
  const low = d.rows.flatMap((r) => (r.below_minimum || []).map((s) => [r, s]));
  if (!low.length) return [];
  return [el("h2", {}, `${t("below_minimum")} (${low.length})`),
    el("ul", { class: "notes" }, low.map(([r, s]) => el("li", {},
      el("b", {}, r.total ? `${LANG === "zh" ? "合计" : "Total"} · ${r.name}` : r.name),
      `:${LANG === "zh" ? s.name_zh : s.name_en}(${num(s.value)} < ${num(s.minimum)})`)))];
}

function render() {
  const d = doc;
  document.title = `${d.name} ${titleOf(d)} ${spanText(d)}`;
  const shown = d.metrics;  // the metrics reported anywhere in the summary
  const table = el("table", { class: "table" },
    el("thead", {}, el("tr", {}, el("th", {}, t("name")),
      COUNTS.map((k) => el("th", { class: "n" }, t(k))),
      el("th", { class: "n" }, t("reporting_rate")), el("th", { class: "n" }, t("on_time_rate")),
      shown.map((m) => el("th", { class: "n" }, metricName(m))))),
    el("tbody", {}, d.rows.map((r) => el("tr", { class: r.total ? "total" : "" },
      el("td", {}, r.total ? `${LANG === "zh" ? "合计" : "Total"} · ${r.name}` : r.name),
      COUNTS.map((k) => el("td", { class: "n" }, num(r[k]))),
      el("td", { class: `n ${rateClass(r.reporting_rate)}` }, pct(r.reporting_rate)),
      el("td", { class: "n" }, pct(r.on_time_rate)),
      shown.map((m) => el("td", { class: "n" }, num(r.values[m.code] || 0)))))));
  // Listed by area below the node, as a 通报 names them: each town (or village) in turn.
  const areas = d.rows.filter((r) => !r.total);
  const units = (list, time) => {
    if (!list.length) return el("p", { class: "muted" }, t("none"));
    const groups = new Map();
    for (const u of list) {
      const area = areas.find((r) => (u.node || "").startsWith(r.node));
      const key = area ? area.name : (LANG === "zh" ? "本级直属" : "Run at this level");
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(u);
    }
    return el("div", { class: "unit-groups" }, [...groups].map(([name, us]) => el("p", {},
      el("b", {}, `${name}(${us.length}):`),
      us.map((u, i) => el("span", {}, i ? "、" : "", u.name || u.unit,
        time && u.submitted_at ? el("span", { class: "muted small" }, `(${localTime(u.submitted_at)})`) : null)))));
  };
  const alerts = d.alerts.length ? el("table", { class: "table" },
    el("thead", {}, el("tr", {}, [t("started"), t("type"), t("unit"), t("deadline"), t("outcome"), t("by")]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, d.alerts.map((a) => el("tr", {},
      el("td", {}, localTime(a.started_at)),
      el("td", {}, t(`kind_${a.kind}`)),
      el("td", {}, a.unit_name || a.node_name || a.unit || a.node,
        a.kind === "missing_report" && a.details && a.details.units ? el("span", { class: "muted small" }, ` (${a.details.units.length})`) : null),
      el("td", {}, localTime(a.deadline), a.overdue ? el("span", { class: "chip chip-missing" }, t("overdue")) : null),
      el("td", {}, t(a.status), a.outcome ? ` · ${t(a.outcome)}` : "", a.note ? ` · ${a.note}` : ""),
      el("td", {}, a.closed_by || a.acknowledged_by || "")))))
    : el("p", { class: "muted" }, t("none"));
  fill($("doc"), 
    el("header", { class: "doc-head" },
      el("h1", {}, `${d.name}${d.sector_name ? ` · ${d.sector_name[LANG]} · ` : LANG === "zh" ? "" : " · "}${titleOf(d)}`),
      el("div", { class: "muted" }, `${spanText(d)} · ${t("generated")} ${d.generated_at}`)),
    el("p", { class: "doc-lead" }, lead(d)),
    el("h2", {}, t("rollup_table")), table,
    d.start === d.end ? el("h2", {}, `${t("missing_title")} (${d.missing_units.length})`) : null,
    d.start === d.end ? units(d.missing_units, false) : null,
    d.pending_units.length ? el("h2", {}, `${t("pending_title")} (${d.pending_units.length})`) : null,
    d.pending_units.length ? units(d.pending_units, false) : null,
    d.exempt_units.length ? el("h2", {}, `${t("exempt_title")} (${d.exempt_units.length})`) : null,
    d.exempt_units.length ? units(d.exempt_units, false) : null,
    d.start === d.end ? el("h2", {}, `${t("late_title")} (${d.late_units.length})`) : null,
    d.start === d.end ? units(d.late_units, true) : null,
    ...belowMinimum(d),
    el("h2", {}, `${t("notes_title")} (${d.notes.length})`),
    d.notes.length ? el("ul", { class: "notes" }, d.notes.map((n) => el("li", {},
      el("b", {}, n.unit_name || n.unit), n.node_name ? el("span", { class: "muted small" }, ` · ${n.node_name}`) : null,
      `:${n.note}`))) : el("p", { class: "muted" }, t("none")),
    el("h2", {}, `${t("day_alerts")} (${d.alerts.length})`), alerts,
    foot());
}

start();
