// 逐级审核上报: a node's operator reviews the reports below (a town: each village's and unit's
// report of the day, sent back with a reason), confirms the node's day (确认上报), and sees which
// children confirmed, when, and with which figures (the county's confirmation panel); a
// correction after a confirmation shows as such, with its difference. Through the console's
// backend, which asks the signoff service with the operator's token.
"use strict";

const state = { me: null, node: null, day: null, metrics: {}, view: null, units: [] };
const STATUS_CLASS = { confirmed: "rate-good", unconfirmed: "rate-fair", reopened: "rate-bad",
                       not_required: "rate-none" };

async function start() {
  state.me = await operatorStart();
  if (!state.me) return;
  nodeDay(state.me, state, load);
  const { metrics } = await api("/api/catalogue");
  state.metrics = Object.fromEntries(metrics.map((m) => [m.code, m]));
  await load();
}

function figures(values) {
  const entries = Object.entries(values || {});
  if (!entries.length) return "—";
  return entries.map(([code, v]) => {
    const m = state.metrics[code];
    return `${m ? metricName(m) : code} ${num(v)}`;
  }).join(" · ");
}

function signed(values) {
  return Object.entries(values || {}).map(([code, v]) => {
    const m = state.metrics[code];
    return `${m ? metricName(m) : code} ${v > 0 ? "+" : ""}${num(v)}`;
  }).join(" · ");
}

async function load() {
  $("confirm-error").textContent = "";
  $("units-error").textContent = "";
  const q = `day=${state.day}`;
  try {
    state.view = await api(`/api/signoff/${state.node}?${q}`);
  } catch (error) {
    showFailure($("confirm-error"), error);
    return;
  }
  // A town or village reviews its units' reports; a county watches its towns' confirmations.
  const reviews = state.node.length >= 9;
  $("units-panel").hidden = !reviews;
  state.units = [];
  if (reviews) {
    try {
      state.units = (await api(`/api/review/${state.node}?${q}`)).units;
    } catch (error) {
      $("units-error").textContent = failure(error);
    }
  }
  render();
}

function statusBadge(view) {
  return el("span", { class: `badge status-${view.status} ${STATUS_CLASS[view.status] || ""}` },
    t(`st_${view.status}`));
}

function changesList(view) {
  if (!view.changes.length) return null;
  return el("ul", { class: "changes" }, view.changes.map((c) => el("li", { class: "change" },
    el("b", {}, c.label), ` · ${c.unit} · ${t("revision_short")} ${c.confirmed_revision || "—"} → ${c.revision}`,
    c.reason ? ` · ${c.reason}` : "", ` · ${localTime(c.at, true)}`)));
}

function render() {
  const v = state.view;
  $("node-name").textContent = v.name;
  const c = v.confirmation;
  fill($("node-status"),
    el("p", {}, statusBadge(v),
      v.due_at ? el("span", { class: "muted small" }, ` ${t("due_by")} ${localTime(v.due_at, true)}`) : null,
      v.open_sendbacks ? el("span", { class: "badge rate-poor" }, ` ${t("open_sendbacks")} ${v.open_sendbacks}`) : null),
    c ? el("p", { class: "confirmed" }, `${t("confirmed_figures")}: ${figures(c.figures)} · ${t("confirmed_at")} ${localTime(c.confirmed_at, true)} · ${t("confirmed_by")} ${c.confirmed_by}`) : null,
    el("p", { class: "live-figures" }, `${c ? t("live_now") : t("live_figures")}: ${figures(v.live)}`),
    v.changed_after_confirmation ? el("p", { class: "difference bad" },
      `${t("changed_after")} · ${t("difference")}: ${signed(v.difference)}`) : null,
    changesList(v));
  const own = state.me.scope === v.node;
  $("confirm").hidden = !(own && v.confirms && v.status !== "confirmed");
  $("confirm").textContent = v.status === "reopened" ? t("confirm_again") : t("confirm_button");

  fill($("children"), v.children.length ? el("table", { class: "table children" },
    el("thead", {}, el("tr", {}, el("th", {}, t("name")), el("th", {}, t("status")),
      el("th", {}, t("confirmed_figures")), el("th", {}, t("live_now")), el("th", {}, t("difference")),
      el("th", {}, t("confirmed_at")))),
    el("tbody", {}, v.children.map((ch) => el("tr", { dataset: { node: ch.node },
                                                     class: ch.changed_after_confirmation ? "changed" : null },
      el("td", {}, el("a", { href: `/review?node=${ch.node}&day=${state.day}` }, ch.name)),
      el("td", {}, statusBadge(ch)),
      el("td", { class: "confirmed" }, ch.confirmation ? figures(ch.confirmation.figures) : "—"),
      el("td", { class: "live-figures" }, figures(ch.live), ch.confirmation ? null : el("span", { class: "muted small" }, ` (${t("st_unconfirmed")})`)),
      el("td", { class: "difference" }, ch.changed_after_confirmation
        ? [el("b", {}, ch.changes.map((x) => x.label).filter((x, i, a) => a.indexOf(x) === i).join(" · ")), " ", signed(ch.difference)]
        : "—"),
      el("td", {}, ch.confirmation ? `${localTime(ch.confirmation.confirmed_at, true)} ${ch.confirmation.confirmed_by}` : "—")))))
    : el("p", { class: "muted empty" }, "—"));

  if (!$("units-panel").hidden) renderUnits();
}

function renderUnits() {
  if (!state.units.length) {
    fill($("units"), el("p", { class: "muted empty" }, t("no_units")));
    return;
  }
  fill($("units"), el("table", { class: "table units" },
    el("thead", {}, el("tr", {}, el("th", {}, t("unit")), el("th", {}, t("figures")),
      el("th", {}, t("status")), el("th", {}))),
    el("tbody", {}, state.units.map((u) => el("tr", { dataset: { unit: u.unit } },
      el("td", {}, el("b", {}, u.name), el("div", { class: "muted small" }, `${u.unit} · ${unitType(u.unit_type)}`)),
      el("td", {}, u.report
        ? [figures(u.report.values), el("div", { class: "muted small" },
            `${t("revision_short")} ${u.report.revision} · ${localTime(u.report.submitted_at)} · ${u.report.reporter}`,
            u.report.zero ? ` · ${t("zero_short")}` : "", u.report.late ? ` · ${t("late_short")}` : "",
            u.report.reason ? ` · ${u.report.reason}` : "")]
        : el("span", { class: "muted" }, t("not_reported"))),
      el("td", { class: "sendback-status" }, u.sendback
        ? el("span", { class: "badge rate-poor" }, `${t("sendback_open")}: ${u.sendback.reason}`)
        : u.sendbacks ? el("span", { class: "badge rate-good" }, t("sendback_cleared")) : ""),
      el("td", {}, u.report && !u.sendback ? el("form", { class: "sendback", onsubmit: (e) => {
        e.preventDefault(); sendBack(u.unit, e.target.reason.value); } },
        el("input", { name: "reason", maxlength: "500", required: true, placeholder: t("send_back_reason") }),
        el("button", { class: "btn small", type: "submit" }, t("send_back"))) : null))))));
}

async function sendBack(unit, reason) {
  $("units-error").textContent = "";
  try {
    await api("/api/sendbacks", { json: { unit, day: state.day, reason: reason.trim() } });
    toast(t("sent_back_done"));
    await load();
  } catch (error) {
    showFailure($("units-error"), error);
  }
}

async function confirmDay() {
  $("confirm-error").textContent = "";
  try {
    state.view = await api("/api/confirmations", { json: { node: state.node, day: state.day } });
    toast(t("confirmed_done"));
    render();
  } catch (error) {
    showFailure($("confirm-error"), error);
  }
}

$("confirm").addEventListener("click", confirmDay);
langButton(() => { if (state.view) render(); });

start();
