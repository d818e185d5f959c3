// The command centre's live picture: a node's figures and its children's, the pending (待报),
// missing (漏报), exempt (免报) and late units, the next cutoff with its countdown, the open
// alerts with their clocks; refreshed by server-sent events, never reloaded. Times are the
// deployment's zone's (common.js localTime).
"use strict";

const state = {
  me: null, node: null, day: null, overview: null, alerts: [], tab: "missing",
  deadlines: new Map(), refreshTimer: null, alertTimer: null, source: null, nextCutoff: null,
};
const URGENT_S = 30 * 60;
const DELIVERY_POLL_MS = 20 * 1000;

function params() {
  const p = new URLSearchParams(location.search);
  return { node: p.get("node"), day: p.get("day") };
}

// ---- calendars (免报) ----------------------------------------------------------------------

async function refreshCalendars() {
  try {
    state.calendars = await api(`/api/calendars?node=${state.node}`);
  } catch (error) {
    if (error.status === 401) return showSignIn();
    state.calendars = [];
  }
  renderCalendars();
}

function calendarCovers(x) {
  const what = [x.unit_code, x.node_code, x.unit_type ? unitType(x.unit_type) : null];
  const day = x.weekday ? ` · ${t("weekday")} ${t("weekdays")[x.weekday - 1]}` : "";
  return `${what.filter(Boolean).join(" · ")}${day}`;
}

function renderCalendars() {
  const list = state.calendars || [];
  $("calendar-count").textContent = list.length;
  fill($("calendars"), list.length ? el("ul", { class: "calendar-list" }, list.map((x) => el("li", {
    dataset: { exemption: x.exemption_id } },
    el("div", {}, el("b", {}, x.reason), el("span", { class: "muted small" }, ` ${calendarCovers(x)}`)),
    el("div", { class: "muted small" }, `${x.valid_from} – ${x.valid_to || "…"} · ${t("declared_by")} ${x.declared_by}`),
    el("button", { type: "button", class: "btn small", onclick: () => endCalendar(x) }, t("end_calendar")))))
    : el("p", { class: "muted empty" }, t("none")));
}

function declareCalendar() {
  const field = (name, input) => el("label", {}, t(name), input);
  const node = el("input", { name: "node_code", value: state.node });
  const unit = el("input", { name: "unit_code", placeholder: "4306…-KG" });
  const type = el("select", { name: "unit_type" }, el("option", { value: "" }, t("all_types")),
    Object.keys(UNIT_TYPES).map((code) => el("option", { value: code }, unitType(code))));
  const weekday = el("select", { name: "weekday" }, el("option", { value: "" }, t("every_day")),
    [...t("weekdays")].map((d, i) => el("option", { value: i + 1 }, d)));
  const from = el("input", { type: "date", name: "valid_from", value: state.me.today, min: state.me.today });
  const to = el("input", { type: "date", name: "valid_to", min: state.me.today });
  const reason = el("input", { name: "reason", required: true, placeholder: "寒假 / 休市 / 停业整顿" });
  const error = el("div", { class: "field-error" });
  const form = el("form", { class: "dialog-form", onsubmit: async (e) => {
    e.preventDefault();
    const body = { reason: reason.value.trim(), valid_from: from.value || null, valid_to: to.value || null,
                   weekday: weekday.value ? Number(weekday.value) : null, unit_type: type.value || null };
    if (unit.value.trim()) body.unit_code = unit.value.trim(); else body.node_code = node.value.trim();
    try {
      await api("/api/calendars", { json: body });
      $("dialog").close();
      refreshCalendars();
      soon("figures");
    } catch (err) {
      error.textContent = err.errors.length ? err.errors.map(message).join(";") : err.message;
    }
  } },
    el("h2", {}, t("declare")),
    field("scope_node", node), field("scope_unit", unit), field("type", type), field("weekday", weekday),
    field("valid_from", from), field("valid_to", to), field("reason", reason), error,
    el("div", { class: "dialog-actions" },
      el("button", { type: "button", class: "btn", onclick: () => $("dialog").close() }, t("cancel")),
      el("button", { type: "submit", class: "btn primary" }, t("submit"))));
  fill($("dialog-body"), form);
  $("dialog").showModal();
}

async function endCalendar(x) {
  const reason = window.prompt(`${t("end_calendar")} · ${x.reason}`, "");
  if (!reason) return;
  try {
    await api(`/api/calendars/${x.exemption_id}/end`, { json: { reason } });
    refreshCalendars();
    soon("figures");
  } catch (error) {
    toast(error.errors.length ? message(error.errors[0]) : error.message, true);
  }
}

function go(node, push = true) {
  state.node = node;
  const p = new URLSearchParams();
  if (node !== state.me.scope) p.set("node", node);
  if (state.day !== state.me.today) p.set("day", state.day);
  const url = location.pathname + (p.toString() ? `?${p}` : "");
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
  refresh();
  refreshAlerts();
  refreshCalendars();
}

async function start() {
  applyI18n();
  await signInFromHash();
  try {
    state.me = await api("/api/me");  // sets the zone every time is shown in
  } catch (error) {
    return showSignIn();
  }
  if (state.me.kind !== "operator") { location.href = "/report"; return; }
  $("signin").hidden = true;
  $("main").hidden = false;
  $("scope-name").textContent = scopeTitle(state.me);
  $("who").textContent = state.me.holder;
  const p = params();
  state.day = p.day || state.me.today;
  $("day").value = state.day;
  $("day").max = state.me.today;
  go(p.node || state.me.scope, false);
  connect();
  setInterval(tick, 1000);
  // Deliveries go out after the alert's event, and notify sends none of its own: ask again.
  setInterval(() => soon("alerts"), DELIVERY_POLL_MS);
}

// A sector operator (行业部门) sees its sector's view everywhere: the title says which.
function scopeTitle(me) {
  const where = me.scope_name || me.scope;
  if (me.sector_name) {
    return `${where} · ${me.sector_name[LANG] || me.sector} ${LANG === "zh" ? "行业视图" : "sector view"}`;
  }
  return `${where} · ${LANG === "zh" ? "指挥部" : "command centre"}`;
}

function showSignIn() {
  $("main").hidden = true;
  $("signin").hidden = false;
  $("token").focus();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("token-error").textContent = "";
  try {
    await api("/api/session", { json: { token: $("token").value.trim() } });
    location.reload();
  } catch (error) {
    $("token-error").textContent = error.errors.length ? message(error.errors[0]) : error.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  await api("/api/session", { method: "DELETE" });
  location.href = "/";
});
$("declare").addEventListener("click", declareCalendar);
langButton(() => {
  if (state.me) {
    $("scope-name").textContent = scopeTitle(state.me);
    render();
    renderAlerts();
    renderCalendars();
  }
});
$("day").addEventListener("change", () => { state.day = $("day").value || state.me.today; go(state.node); });
window.addEventListener("popstate", () => {
  const p = params();
  state.day = p.day || state.me.today;
  $("day").value = state.day;
  go(p.node || state.me.scope, false);
});
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  state.tab = tab.dataset.tab;
  document.querySelectorAll(".tab").forEach((x) => x.classList.toggle("active", x === tab));
  renderUnitList();
}));

// ---- data --------------------------------------------------------------------------------

async function refresh() {
  const node = state.node, day = state.day;
  try {
    const overview = await api(`/api/overview/${node}?day=${day}`);
    if (node !== state.node || day !== state.day) return;  // the operator moved on meanwhile
    state.overview = overview;
    render();
  } catch (error) {
    if (error.status === 401) return showSignIn();
    toast(error.errors.length ? message(error.errors[0]) : error.message, true);
  }
}

async function refreshAlerts() {
  const node = state.node;
  try {
    const alerts = await api(`/api/alerts?node=${node}`);
    if (node !== state.node) return;  // an answer for a node the operator has left
    state.alerts = alerts;
    const now = Date.now();
    state.deadlines = new Map(state.alerts.map((a) => [a.alert_id,
      a.seconds_left === null ? null : now + a.seconds_left * 1000]));
    renderAlerts();
  } catch (error) {
    if (error.status === 401) return showSignIn();
  }
}

function soon(kind) {
  // Bursts of events make one fetch: the figures at most twice a second.
  const key = kind === "alerts" ? "alertTimer" : "refreshTimer";
  if (state[key]) return;
  state[key] = setTimeout(() => {
    state[key] = null;
    if (kind === "alerts") refreshAlerts(); else refresh();
  }, 400);
}

function connect() {
  const source = new EventSource("/api/events");
  state.source = source;
  const live = $("live");
  source.addEventListener("hello", () => {
    live.dataset.state = "on";
    live.querySelector("b").dataset.i18n = "live";
    live.querySelector("b").textContent = t("live");
    soon("figures"); soon("alerts");  // whatever happened while disconnected
  });
  source.addEventListener("rollup", (event) => {
    const data = JSON.parse(event.data);
    if (data.day && data.day !== state.day) return;
    // This node, one of its children, or anything below: the figures shown depend on them.
    if (data.node.startsWith(state.node) || state.node.startsWith(data.node)) soon("figures");
  });
  source.addEventListener("alert", (event) => {
    const data = JSON.parse(event.data);
    if (!data.node.startsWith(state.node)) return;
    if (data.change === "opened" && data.kind !== "missing_report") toast(`${t("new_alert")}: ${alertTitle(data)} · ${data.unit || data.node}`);
    soon("alerts"); soon("figures");
  });
  source.addEventListener("resync", () => { soon("figures"); soon("alerts"); });
  source.onerror = () => {
    live.dataset.state = "off";
    live.querySelector("b").textContent = t("offline");
  };
}

// ---- rendering ---------------------------------------------------------------------------

function render() {
  const o = state.overview;
  if (!o) return;
  const view = o.node, comp = view.completeness;
  document.title = `${view.name || view.node} · ${t("app_title")}`;
  fill($("crumbs"), ...o.path.flatMap((p, i) => [
    i ? el("span", { class: "sep" }, "›") : null,
    p.node === view.node ? el("b", {}, p.name || p.node)
      : el("a", { href: "#", onclick: (e) => { e.preventDefault(); go(p.node); } }, p.name || p.node),
  ]), el("span", { class: "crumb-day" }, state.day));
  $("summary-link").href = `/summary?node=${view.node}&day=${state.day}`;
  $("bulletin-link").href = `/bulletin?node=${view.node}`;
  $("trend-link").href = `/trend?node=${view.node}&period=month`;

  fill($("kpis"), 
    kpi(t("reporting_rate"), pct(comp.reporting_rate), rateClass(comp.reporting_rate), "big",
        gauge(comp.reporting_rate)),
    kpi(t("on_time_rate"), pct(comp.on_time_rate), rateClass(comp.on_time_rate), "big",
        gauge(comp.on_time_rate)),
    kpi(t("expected"), num(comp.expected)),
    kpi(t("reported"), num(comp.reported), "rate-good"),
    kpi(t("zero"), num(comp.zero)),
    kpi(t("late"), num(comp.late), comp.late ? "rate-fair" : ""),
    kpi(t("pending"), num(comp.pending), comp.pending ? "rate-none" : "", "", null, "pending"),
    kpi(t("missing"), num(comp.missing), comp.missing ? "rate-bad" : "", "", null, "missing"),
    kpi(t("exempt"), num(comp.exempt), "", "", null, "exempt"),
  );
  $("kpis").dataset.reported = comp.reported;
  $("kpis").dataset.pending = comp.pending;
  $("kpis").dataset.missing = comp.missing;
  $("kpis").dataset.exempt = comp.exempt;
  renderCutoff(comp);

  const metrics = ["fever", "ili", "sick_absence", "home_observation", "central_isolation",
                   "nat_tests", "nat_positive"];
  fill($("metrics"), ...metrics.map((code) => {
    const value = view.values[code] || 0;
    return el("div", { class: `metric ${value && (code === "fever" || code === "ili" || code === "nat_positive") ? "hot" : ""}`,
                       dataset: { metric: code } },
      el("span", { class: "metric-value" }, num(value)),
      el("span", { class: "metric-name" }, metricLabel(code)));
  }));

  const nodes = o.children.filter((c) => c.kind === "node");
  const units = o.children.filter((c) => c.kind === "unit");
  $("children-title").textContent = nodes.length ? t("children_title") : t("units_title");
  fill($("heat"), ...nodes.map((c) => el("button", {
    type: "button", class: `heat-cell ${rateClass(c.completeness.reporting_rate)}`,
    title: `${c.name} ${pct(c.completeness.reporting_rate)}`,
    onclick: () => go(c.node),
  }, el("span", {}, shortName(c.name || c.node)), el("b", {}, pct(c.completeness.reporting_rate)))));
  $("heat").hidden = nodes.length < 2;
  $("legend").hidden = nodes.length < 2;

  const rows = nodes.slice().sort((a, b) =>
    (a.completeness.reporting_rate ?? 2) - (b.completeness.reporting_rate ?? 2));
  fill($("children"), 
    nodes.length ? childTable(rows) : null,
    units.length && nodes.length ? el("h3", { class: "sub-title" }, ownUnitsTitle(view)) : null,
    units.length ? unitTable(units) : null,
    !nodes.length && !units.length ? el("p", { class: "muted empty" }, t("none")) : null);
  renderUnitList();
}

function ownUnitsTitle(view) {
  const zh = { county: "县直单位", town: "镇直单位" }, en = { county: "County-run units", town: "Town-run units" };
  return (LANG === "zh" ? zh : en)[view.level] || t("units_title");
}

function kpi(label, value, cls = "", size = "", extra = null, name = null) {
  return el("div", { class: `kpi ${size} ${cls}`, dataset: name ? { kpi: name } : {} }, extra,
    el("div", { class: "kpi-value" }, value), el("div", { class: "kpi-label" }, label));
}

// The next cutoff of the node's pending units, with a countdown; when it passes, the figures
// are fetched again (the live event announcing it usually comes first).
function renderCutoff(comp) {
  state.nextCutoff = comp.next_cutoff ? Date.parse(comp.next_cutoff) : null;
  const rate = comp.final_reporting_rate;
  fill($("cutoff-bar"),
    comp.next_cutoff
      ? el("span", { class: "next-cutoff" }, `${t("next_cutoff")} `,
          el("b", { id: "next-cutoff-time" }, localTime(comp.next_cutoff)),
          el("span", { class: "countdown", id: "cutoff-countdown" }))
      : el("span", { class: "muted" }, state.day === state.me.today ? t("no_cutoff") : ""),
    el("span", { class: "muted" }, ` · ${t("final_reporting_rate")} `, el("b", {}, pct(rate))));
  tickCutoff();
}

function tickCutoff() {
  const node = $("cutoff-countdown");
  if (!node || state.nextCutoff === null) return;
  const left = (state.nextCutoff - Date.now()) / 1000;
  node.textContent = ` ${t("left")} ${clock(Math.max(0, left))}`;
  if (left < -1 && !state.cutoffPassed) {  // passed: the figures move by themselves
    state.cutoffPassed = true;
    setTimeout(() => { state.cutoffPassed = false; soon("figures"); }, 1500);
  }
}

function gauge(rate) {
  const r = Math.max(0, Math.min(1, rate || 0));
  return el("div", { class: "gauge" }, el("i", { style: `width:${(r * 100).toFixed(1)}%` }));
}

function metricLabel(code) {
  const names = {
    fever: ["发热病例", "Fever"], ili: ["流感样病例", "Flu-like"], sick_absence: ["因病缺勤", "Sick absence"],
    home_observation: ["居家观察", "Home obs."], central_isolation: ["集中隔离", "Isolation"],
    nat_tests: ["核酸检测", "NAT tests"], nat_positive: ["核酸阳性", "NAT positive"],
  };
  const pair = names[code] || [code, code];
  return pair[LANG === "zh" ? 0 : 1];
}

function shortName(name) { return name.replace(/(镇|乡|街道|社区|村)$/u, "") || name; }

function childTable(rows) {
  return el("table", { class: "table children" },
    el("thead", {}, el("tr", {},
      el("th", {}, t("name")), el("th", { class: "bar-col" }, t("reporting_rate")),
      el("th", { class: "n" }, t("reported")), el("th", { class: "n hide-s" }, t("zero")),
      el("th", { class: "n" }, t("late")), el("th", { class: "n" }, t("pending")),
      el("th", { class: "n" }, t("missing")), el("th", { class: "n hide-s" }, t("exempt")),
      el("th", { class: "n" }, t("fever")), el("th", { class: "n hide-s" }, t("ili")))),
    el("tbody", {}, rows.map((c) => {
      const comp = c.completeness, rate = comp.reporting_rate;
      return el("tr", { class: "clickable", dataset: { node: c.node }, onclick: () => go(c.node) },
        el("td", {}, el("b", {}, c.name || c.node), el("div", { class: "muted small" }, c.node)),
        el("td", { class: "bar-col" }, el("div", { class: `bar ${rateClass(rate)}` },
          el("i", { style: `width:${((rate || 0) * 100).toFixed(1)}%` }),
          el("span", {}, pct(rate)))),
        el("td", { class: "n" }, `${num(comp.reported)}/${num(comp.expected)}`),
        el("td", { class: "n hide-s" }, num(comp.zero)),
        el("td", { class: `n ${comp.late ? "warn" : ""}` }, num(comp.late)),
        el("td", { class: "n" }, num(comp.pending)),
        el("td", { class: `n ${comp.missing ? "bad" : ""}` }, num(comp.missing)),
        el("td", { class: "n hide-s" }, num(comp.exempt)),
        el("td", { class: `n ${c.values.fever ? "bad" : ""}` }, num(c.values.fever || 0)),
        el("td", { class: "n hide-s" }, num(c.values.ili || 0)));
    })));
}

function statusChip(u) {
  const status = ["missing", "pending", "exempt"].includes(u.status) ? u.status
    : u.late ? "late" : u.status;
  const chip = el("span", { class: `chip chip-${status}` }, t(`status_${status}`));
  return u.status === "exempt" && u.exempt_reason ? [chip, ` ${u.exempt_reason}`] : chip;
}

function unitTable(units) {
  return el("table", { class: "table units" },
    el("thead", {}, el("tr", {},
      el("th", {}, t("unit")), el("th", { class: "hide-s" }, t("type")),
      el("th", {}, ""), el("th", { class: "n" }, t("submitted_at")),
      el("th", { class: "n" }, t("fever")), el("th", { class: "n" }, t("ili")))),
    el("tbody", {}, units.map((u) => el("tr", {
      class: `clickable unit-${u.status}`, dataset: { unit: u.unit }, onclick: () => showUnit(u.unit),
    },
      el("td", {}, el("b", {}, u.name || u.unit), el("div", { class: "muted small" }, u.unit)),
      el("td", { class: "hide-s" }, unitType(u.unit_type)),
      el("td", {}, statusChip(u)),
      el("td", { class: "n" }, localTime(u.submitted_at)),
      el("td", { class: `n ${u.values.fever ? "bad" : ""}` }, num(u.values.fever || 0)),
      el("td", { class: "n" }, num(u.values.ili || 0))))));
}

function renderUnitList() {
  const o = state.overview;
  if (!o) return;
  const comp = o.node.completeness;
  for (const tab of ["missing", "pending", "exempt", "late"]) {
    $(`${tab}-count`).textContent = comp[tab];
  }
  const list = comp[`${state.tab}_units`] || [];
  if (!list.length) {
    fill($("unit-list"), el("p", { class: "muted empty" },
      state.tab === "missing" && comp.expected && !comp.pending ? t("all_clear") : t("none")));
    return;
  }
  // Each list says what matters for its units: when it was sent, its cutoff, or why exempt.
  const note = (u) => u.submitted_at ? localTime(u.submitted_at)
    : u.reason ? u.reason
    : u.cutoff ? `${t("cutoff")} ${String(u.cutoff).slice(0, 5)}` : "";
  fill($("unit-list"), el("ul", { dataset: { list: state.tab } }, list.map((u) => el("li", {
    class: "clickable", dataset: { unit: u.unit }, onclick: () => showUnit(u.unit),
  },
    el("span", { class: "u-name" }, u.name || u.unit),
    el("span", { class: "muted small" }, unitType(u.unit_type)),
    el("span", { class: "u-time" }, note(u))))));
}

// ---- alerts ------------------------------------------------------------------------------

function alertTitle(a) {
  if (a.kind === "case") return a.case_kind ? `${t(a.case_kind)} · ${t("kind_case")}` : t("kind_case");
  return t(`kind_${a.kind}`);
}

function clock(seconds) {
  const s = Math.abs(Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return `${h ? `${h}:` : ""}${pad(m)}:${pad(r)}`;
}

// Fever, flu-like and outbreak alerts come first, each on its own card with its clock; the
// missing-report alerts (漏报, one per village at each cutoff) are many and follow as a
// compact, folded list.
function renderAlerts() {
  const cases = state.alerts.filter((a) => a.kind !== "missing_report");
  const missing = state.alerts.filter((a) => a.kind === "missing_report");
  $("alert-count").textContent = cases.filter((a) => a.status === "open").length;
  const parts = cases.length ? cases.map(alertCard)
    : [el("p", { class: "muted empty ok" }, "✓ " + t("no_alerts"))];
  if (missing.length) {
    const open = missing.filter((a) => a.status === "open").length;
    const group = el("details", { class: "missing-alerts" },
      el("summary", {}, el("span", {}, t("kind_missing_report")),
        el("span", { class: "count" }, missing.length),
        open ? el("span", { class: "muted small" }, ` ${t("open")} ${open}`) : null),
      el("div", {}, missing.map(alertCard)));
    group.open = state.missingOpen || false;
    group.addEventListener("toggle", () => { state.missingOpen = group.open; });
    parts.push(group);
  }
  fill($("alerts"), ...parts);
  tick();
}

function alertCard(a) {
  const units = (a.details && a.details.units) || a.missing_units || [];
  return el("article", { class: `alert alert-${a.status} kind-${a.kind}`, dataset: { alert: a.alert_id } },
    el("div", { class: "alert-top" },
      el("button", { type: "button", class: "alert-kind link", dataset: { action: "details" },
                     onclick: () => showAlert(a) }, alertTitle(a)),
      a.status === "open" ? el("span", { class: "countdown", dataset: { countdown: a.alert_id } })
        : el("span", { class: "chip chip-ack" }, t(a.status))),
    el("div", { class: "alert-where" },
      el("b", {}, a.unit_name || a.node_name || a.unit || a.node),
      a.unit ? el("span", { class: "muted" }, ` ${a.node_name || a.node}`) : null,
      a.kind === "missing_report" ? el("span", { class: "muted" }, ` · ${a.day} · ${units.length} ${LANG === "zh" ? "家未报" : "missing"}`) : null),
    el("div", { class: "alert-meta muted small" },
      `${t("started")} ${localTime(a.started_at)} · ${t("deadline")} ${localTime(a.deadline)}`,
      a.escalations ? el("span", { class: "chip chip-late" }, `${t("escalated")} ×${a.escalations}`) : null,
      a.late ? el("span", { class: "chip chip-late" }, t("late_case")) : null,
      a.acknowledged_by ? ` · ${t("by")} ${a.acknowledged_by}` : null),
    deliveryLine(a.deliveries),
    el("div", { class: "alert-actions" },
      a.status === "open" ? el("button", {
        type: "button", class: "btn primary small", dataset: { action: "acknowledge" },
        onclick: (e) => acknowledge(a, e.currentTarget),
      }, t("acknowledge")) : null,
      el("button", { type: "button", class: "btn small", dataset: { action: "close" },
                     onclick: () => closeAlert(a) }, t("close_alert"))));
}

const SHOWN_DELIVERIES = 3;

// Who was told of the alert, latest first; null when notify could not be asked.
function deliveryLine(deliveries) {
  if (deliveries === null || deliveries === undefined) {
    return el("div", { class: "deliveries unavailable small" }, t("deliveries_unavailable"));
  }
  if (!deliveries.length) return el("div", { class: "deliveries muted small" }, t("no_deliveries"));
  const latest = deliveries.slice().reverse();
  return el("div", { class: "deliveries small" },
    latest.slice(0, SHOWN_DELIVERIES).map((d) =>
      el("span", { class: `delivery delivery-${d.status}`, title: d.last_error || "" }, deliveryText(d))),
    latest.length > SHOWN_DELIVERIES ? el("span", { class: "muted" }, `+${latest.length - SHOWN_DELIVERIES}`) : null);
}

function deliveryTable(deliveries) {
  if (deliveries === null) return el("p", { class: "deliveries unavailable" }, t("deliveries_unavailable"));
  if (!deliveries.length) return el("p", { class: "muted" }, t("no_deliveries"));
  return el("table", { class: "table deliveries-table" },
    el("thead", {}, el("tr", {}, el("th", {}, t("time")), el("th", {}, t("person")),
      el("th", {}, t("role")), el("th", {}, t("status")), el("th", { class: "n" }, t("attempts")))),
    el("tbody", {}, deliveries.map((d) => el("tr", { class: `delivery-${d.status}` },
      el("td", {}, localTime(d.sent_at || d.created_at, true)),
      el("td", {}, d.person_name),
      el("td", {}, t(`role_${d.role}`)),
      el("td", {}, deliveryText(d)),
      el("td", { class: "n" }, d.attempts)))));
}

// The alert's history: its changes and, in the order they happened, who was told of it and
// whether it arrived, as the alerts service keeps them ("短信已送达 13:31 张某").
function historyItems(changes, told) {
  const items = changes.map((c) => ({ at: c.at, node: el("li", { class: "change" },
    `${localTime(c.at, true)} · ${t(`change_${c.change}`)}`, c.actor ? ` · ${c.actor}` : "",
    c.reason ? ` · ${c.reason}` : "") }));
  for (const x of told || []) {
    items.push({ at: x.at, node: el("li", { class: `told told-${x.outcome}` },
      `${localTime(x.at, true)} · ${toldLine(x.channel, x.outcome, x.at, x.person, x.reason)}`) });
  }
  return items.sort((p, q) => new Date(p.at) - new Date(q.at)).map((i) => i.node);
}

// An alert's detail: its history (alerts) and who was told of it, live (notify).
async function showAlert(a) {
  fill($("dialog-body"), el("p", { class: "muted" }, "…"));
  $("dialog").showModal();
  const [history, told, detail] = await Promise.allSettled([
    api(`/api/alerts/${a.alert_id}/history`), api(`/api/alerts/${a.alert_id}/deliveries`),
    api(`/api/alerts/${a.alert_id}`)]);
  if (told.status === "rejected" && told.reason.status === 401) return showSignIn();
  fill($("dialog-body"), el("div", { class: "alert-detail", dataset: { alert: a.alert_id } },
    el("div", { class: "dialog-head" },
      el("div", {}, el("h2", {}, alertTitle(a)),
        el("div", { class: "muted small" }, `${a.unit_name || a.node_name || a.unit || a.node} · ${a.day || ""}`)),
      el("button", { type: "button", class: "btn ghost", onclick: () => $("dialog").close() }, "✕")),
    el("h3", {}, t("alert_history")),
    history.status === "fulfilled" ? el("ul", { class: "changes" }, historyItems(history.value,
      detail.status === "fulfilled" ? detail.value.told : []))
      : el("p", { class: "field-error" }, history.reason.message),
    el("h3", {}, t("deliveries")),
    deliveryTable(told.status === "fulfilled" ? told.value : null)));
}

function tick() {
  tickCutoff();
  const now = Date.now();
  document.querySelectorAll("[data-countdown]").forEach((node) => {
    const deadline = state.deadlines.get(node.dataset.countdown);
    if (deadline === null || deadline === undefined) return;
    const left = (deadline - now) / 1000;
    const card = node.closest(".alert");
    node.textContent = left >= 0 ? `${t("left")} ${clock(left)}` : `${t("overdue")} ${clock(left)}`;
    card.classList.toggle("urgent", left >= 0 && left < URGENT_S);
    card.classList.toggle("overdue", left < 0);
  });
}

async function acknowledge(alert, button) {
  button.disabled = true;
  try {
    await api(`/api/alerts/${alert.alert_id}/acknowledge`, { json: { reason: null } });
    toast(`${t("acknowledged")}: ${alert.unit_name || alert.unit || alert.node}`);
    await refreshAlerts();
  } catch (error) {
    button.disabled = false;
    toast(error.errors.length ? message(error.errors[0]) : error.message, true);
  }
}

function closeAlert(alert) {
  const outcome = el("select", { name: "outcome" },
    ["isolated", "referred", "excluded", "other"].map((o) => el("option", { value: o }, t(o))));
  const note = el("textarea", { name: "note", rows: 3, required: true });
  const error = el("div", { class: "field-error" });
  const form = el("form", { class: "dialog-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api(`/api/alerts/${alert.alert_id}/close`,
        { json: { outcome: outcome.value, note: note.value.trim() } });
      $("dialog").close();
      await refreshAlerts();
    } catch (err) {
      error.textContent = err.errors.length ? err.errors.map(message).join(";") : err.message;
    }
  } },
    el("h2", {}, `${t("close_alert")} · ${alertTitle(alert)}`),
    el("p", { class: "muted" }, alert.unit_name || alert.unit || alert.node_name || alert.node),
    el("label", {}, t("outcome"), outcome), el("label", {}, t("note"), note), error,
    el("div", { class: "dialog-actions" },
      el("button", { type: "button", class: "btn", onclick: () => $("dialog").close() }, t("cancel")),
      el("button", { type: "submit", class: "btn primary" }, t("submit"))));
  fill($("dialog-body"), form);
  $("dialog").showModal();
}

// ---- a unit's history --------------------------------------------------------------------

async function showUnit(code) {
  fill($("dialog-body"), el("p", { class: "muted" }, "…"));
  $("dialog").showModal();
  try {
    const data = await api(`/api/units/${encodeURIComponent(code)}`);
    const info = data.unit;
    const values = (v) => Object.entries(v).filter(([, x]) => x).map(([k, x]) => `${metricLabel(k)} ${num(x)}`).join(",") || t("zero");
    fill($("dialog-body"), el("div", { class: "unit-history" },
      el("div", { class: "dialog-head" },
        el("div", {}, el("h2", {}, info.name || code),
          el("div", { class: "muted small" }, `${code} · ${unitType(info.unit_type)}`)),
        el("button", { type: "button", class: "btn ghost", onclick: () => $("dialog").close() }, "✕")),
      el("h3", {}, t("history")),
      data.reports.length ? el("table", { class: "table" },
        el("thead", {}, el("tr", {}, el("th", {}, t("day")), el("th", { class: "n" }, t("revision")),
          el("th", {}, t("submitted_at")), el("th", {}, t("reporter")), el("th", {}, t("values")))),
        el("tbody", {}, data.reports.map((r) => el("tr", {},
          el("td", {}, r.day), el("td", { class: "n" }, r.revision),
          el("td", {}, localTime(r.submitted_at, true), r.late ? el("span", { class: "chip chip-late" }, t("late")) : null),
          el("td", {}, r.reporter), el("td", {}, values(r.values),
            r.note ? el("div", { class: "note" }, `${t("note")}: ${r.note}`) : null,
            r.reason ? el("div", { class: "muted small" }, `${t("reason")}: ${r.reason}`) : null)))))
        : el("p", { class: "muted" }, t("no_reports")),
      data.cases.length ? el("h3", {}, t("cases")) : null,
      data.cases.length ? el("ul", { class: "cases" }, data.cases.map((c) => el("li", {},
        `${localTime(c.found_at, true)} · ${t(c.kind)}`, c.temperature ? ` · ${c.temperature}°C` : "",
        c.details && c.details.second_temperature ? ` / ${c.details.second_temperature}°C` : "",
        c.symptoms && c.symptoms.length ? ` · ${c.symptoms.map(t).join("、")}` : "",
        c.details && c.details.travel_risk_area ? ` · ${t("travel_risk_area")}` : "",
        c.details && c.details.contact_with_case ? ` · ${t("contact_with_case")}` : "",
        c.details && c.details.action ? ` · ${t(`action_${c.details.action}`)}` : "",
        ` · ${c.person_ref}`))) : null));
  } catch (error) {
    fill($("dialog-body"), el("p", { class: "field-error" },
      error.errors.length ? message(error.errors[0]) : error.message));
  }
}

$("dialog").addEventListener("click", (e) => { if (e.target === $("dialog")) $("dialog").close(); });

start();
