// The weekly 通报 of a node: the towns with the lowest reporting rates, the units with the most
// missing and late days, and the 疑似瞒报 flags, which an operator dismisses with a reason.
"use strict";

let doc = null;
let node = null;

async function load(start, end) {
  const q = new URLSearchParams();
  if (start) q.set("start", start);
  if (end) q.set("end", end);
  try {
    doc = await api(`/api/bulletin/${node}?${q}`);
  } catch (error) {
    if (error.status === 401) { location.href = "/"; return; }
    fill($("doc"), el("p", { class: "field-error" },
      error.errors.length ? message(error.errors[0]) : error.message));
    return;
  }
  $("start").value = doc.start;
  $("end").value = doc.end;
  $("csv").href = `/api/bulletin/${doc.node}/csv?start=${doc.start}&end=${doc.end}`;
  history.replaceState(null, "", `/bulletin?node=${doc.node}&start=${doc.start}&end=${doc.end}`);
  render();
}

async function start() {
  const me = await operatorStart();
  if (!me) return;
  const p = new URLSearchParams(location.search);
  node = p.get("node") || me.scope;
  await load(p.get("start"), p.get("end"));
}

const COLUMNS = ["expected", "reported", "zero", "late", "missing", "corrected", "sent_back"];

function figures(row) {
  return [...COLUMNS.map((k) => el("td", { class: "n" }, row[k] === null || row[k] === undefined ? "—" : num(row[k]))),
    el("td", { class: `n ${rateClass(row.reporting_rate)}` }, pct(row.reporting_rate)),
    el("td", { class: "n" }, pct(row.on_time_rate))];
}

function head(first) {
  return el("thead", {}, el("tr", {}, first.map((k) => el("th", {}, t(k))),
    COLUMNS.map((k) => el("th", { class: "n" }, t(k))),
    el("th", { class: "n" }, t("reporting_rate")), el("th", { class: "n" }, t("on_time_rate"))));
}

function lead(d) {
  const s = d.totals, f = d.flag_counts;
  if (LANG === "zh") {
    return `${d.start} 至 ${d.end}(${d.days} 天),${d.name}应报 ${s.expected} 单位日,已报 ${s.reported}(零报告 ${s.zero}),`
      + `迟报 ${s.late},漏报 ${s.missing},更正 ${s.corrected};报告率 ${pct(s.reporting_rate)},及时率 ${pct(s.on_time_rate)}。`
      + `疑似瞒报 ${f.total} 条,其中待核实 ${f.open} 条。`;
  }
  return `${d.start} to ${d.end} (${d.days} days), ${d.name}: ${s.expected} unit-days expected, ${s.reported} reported `
    + `(${s.zero} zero reports), ${s.late} late, ${s.missing} missing, ${s.corrected} corrected; reporting rate `
    + `${pct(s.reporting_rate)}, on-time rate ${pct(s.on_time_rate)}. ${f.total} suspected concealment flags, ${f.open} open.`;
}

function dismissForm(flag) {
  const reason = el("input", { type: "text", required: true, maxlength: 1000, placeholder: t("dismiss_reason"),
    "aria-label": t("dismiss_reason") });
  const error = el("span", { class: "field-error" });
  return el("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api(`/api/flags/${flag.flag_id}/dismiss`, { json: { reason: reason.value.trim() } });
      await load(doc.start, doc.end);
    } catch (e) {
      error.textContent = e.errors && e.errors.length ? message(e.errors[0]) : e.message;
    }
  } }, reason, el("button", { class: "btn", type: "submit" }, t("dismiss")), error);
}

function flagDetail(f) {
  if (f.kind === "zero_with_case") return `${LANG === "zh" ? "当日病例" : "cases that day"} ${f.details.cases}`;
  return `${f.details.first_day} – ${f.details.last_day} (${f.details.days} ${LANG === "zh" ? "天" : "days"})`;
}

function render() {
  const d = doc;
  document.title = `${d.name} ${t("bulletin_title")} ${d.start}–${d.end}`;
  const children = d.children.length ? el("table", { class: "table", id: "children-table" }, head(["rank", "name"]),
    el("tbody", {}, d.children.map((c) => el("tr", {}, el("td", {}, c.rank), el("td", {}, c.name || c.node), ...figures(c)))))
    : el("p", { class: "muted" }, t("none"));
  const units = d.units.length ? el("table", { class: "table", id: "units-table" }, head(["rank", "unit"]),
    el("tbody", {}, d.units.map((u) => el("tr", {}, el("td", {}, u.rank),
      el("td", {}, u.name || u.unit, el("span", { class: "muted small" }, ` ${unitType(u.unit_type)}`),
        u.flags ? el("span", { class: "chip chip-missing" }, `${t("flags")} ${u.flags}`) : null),
      ...figures(u)))))
    : el("p", { class: "muted" }, t("all_clear"));
  const flags = d.flags.length ? el("table", { class: "table", id: "flags-table" },
    el("thead", {}, el("tr", {}, ["day", "unit", "type", "status", ""].map((k) => el("th", {}, k ? t(k) : "")))),
    el("tbody", {}, d.flags.map((f) => el("tr", { dataset: { flag: f.flag_id } },
      el("td", {}, f.day),
      el("td", {}, f.unit_name || f.unit, el("span", { class: "muted small" }, ` ${f.node_name || f.node}`)),
      el("td", {}, t(`flag_${f.kind}`), el("div", { class: "muted small" }, flagDetail(f))),
      el("td", {}, t(`flag_${f.status}`)),
      el("td", {}, f.status === "open" ? dismissForm(f)
        : `${t("dismissed_by")} ${f.dismissed_by} ${localTime(f.dismissed_at, true)}:${f.dismissal_reason}`)))))
    : el("p", { class: "muted" }, t("none"));
  fill($("doc"),
    el("header", { class: "doc-head" },
      el("h1", {}, `${d.name}${d.sector_name ? ` · ${d.sector_name[LANG]} · ` : LANG === "zh" ? "" : " · "}${t("bulletin_title")}`),
      el("div", { class: "muted" }, `${d.start} – ${d.end} · ${t("generated")} ${d.generated_at}`)),
    el("p", { class: "doc-lead", id: "lead" }, lead(d)),
    el("h2", {}, t("lowest_rates")), children,
    el("h2", {}, `${t("worst_units")} (${d.units.length})`), units,
    el("h2", {}, `${t("flags_title")} (${d.flag_counts.open}/${d.flag_counts.total})`),
    el("p", { class: "muted small" }, t("flags_note")), flags);
}

$("range").addEventListener("submit", (event) => { event.preventDefault(); load($("start").value, $("end").value); });
$("print").addEventListener("click", () => window.print());
langButton(() => { if (doc) render(); });

start();
