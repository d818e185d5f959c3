// The reporting form for units without a system of their own: the daily report, the zero
// report in one click, and a fever or flu-like case. Refusals are shown next to their field.
"use strict";

const SYMPTOMS = ["cough", "sore_throat", "headache", "fatigue", "muscle_ache", "runny_nose", "diarrhea", "rash"];
let me = null, metrics = [], forms = {}, unitTypeShown = null;

async function start() {
  applyI18n();
  await signInFromHash();
  try { me = await api("/api/me"); } catch (_) {
    $("signin").hidden = false;
    return;
  }
  $("main").hidden = false;
  $("who").textContent = me.holder;
  $("scope-name").textContent = me.scope_name || me.scope;
  $("console-link").hidden = me.kind !== "operator";
  $("day").value = me.today;
  $("day").max = me.today;
  $("reporter").value = localStorage.getItem("rollcall.reporter") || (me.kind === "unit" ? me.holder : "");
  $("found-at").value = localNow();
  $("person-ref").value = "P-" + Math.random().toString(36).slice(2, 8);
  ({ metrics, forms } = await api("/api/catalogue"));
  renderMetrics();
  renderSymptoms();
  if (me.kind === "unit") {
    $("unit").value = me.scope;
    $("unit").readOnly = true;
    showUnit(me.unit);
  } else {
    await searchUnits("");
  }
}

function localNow() {
  const d = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// The unit type's form: its required metrics and the optional ones most units send come first,
// its other optional metrics are folded below them. Before a unit is chosen, the commonest.
const COMMON = ["fever", "ili", "sick_absence", "home_observation", "central_isolation",
                "nat_tests", "nat_positive", "returnees_risk"];

function metricField(m) {
  const measure = LANG === "zh" ? m.measure_zh : m.measure_en;
  return el("label", {},
    el("span", {}, metricName(m), measure ? el("span", { class: "muted small" }, ` (${measure})`) : null),
    el("input", { type: "number", min: "0", step: m.value_type === "count" ? "1" : "any",
                  inputmode: m.value_type === "count" ? "numeric" : "decimal",
                  "data-field": `values.${m.code}`, "data-metric": m.code, placeholder: "0" }),
    el("span", { class: "field-error", "data-error": `values.${m.code}` }));
}

function renderMetrics() {
  const form = forms[unitTypeShown];
  const byCode = Object.fromEntries(metrics.map((m) => [m.code, m]));
  const pick = (codes) => codes.map((code) => byCode[code]).filter(Boolean);
  let first, more;
  if (form) {
    first = pick([...form.required, ...form.optional.filter((c) => COMMON.includes(c))]);
    more = pick(form.optional.filter((c) => !COMMON.includes(c)));
  } else {
    first = pick(COMMON);
    more = [];
  }
  fill($("form-name"), form ? (LANG === "zh" ? form.name_zh : form.name_en) : "");
  fill($("metric-fields"), ...first.map(metricField));
  fill($("more-fields"), ...more.map(metricField));
  $("more").hidden = !more.length;
}

// A unit chosen: its form replaces the fields, keeping what was typed into those it shares.
function showForm(unitType) {
  if (unitType === unitTypeShown) return;
  const kept = collectValues();
  unitTypeShown = unitType;
  renderMetrics();
  for (const [code, value] of Object.entries(kept)) {
    const input = document.querySelector(`[data-metric="${code}"]`);
    if (input) input.value = value;
  }
}

function renderSymptoms() {
  fill($("symptoms"), ...SYMPTOMS.map((s) => el("label", {},
    el("input", { type: "checkbox", value: s }), el("span", {}, t(s)))));
}

langButton(() => {
  if (metrics.length) {
    const kept = collectValues();
    renderMetrics();
    for (const [code, value] of Object.entries(kept)) {
      const input = document.querySelector(`[data-metric="${code}"]`);
      if (input) input.value = value;
    }
    const checked = collectSymptoms();
    renderSymptoms();
    document.querySelectorAll("#symptoms input").forEach((box) => { box.checked = checked.includes(box.value); });
  }
});
$("sign-out").addEventListener("click", async () => {
  await api("/api/session", { method: "DELETE" });
  location.href = "/report";
});
$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/api/session", { json: { token: $("token").value.trim() } });
    location.reload();
  } catch (error) {
    $("token-error").textContent = error.errors.length ? message(error.errors[0]) : error.message;
  }
});

let searchTimer = null;
$("unit").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => searchUnits($("unit").value), 250);
});

let found = [];
async function searchUnits(q) {
  if (!me || me.kind === "unit") return;
  const code = q.split(" ")[0];
  found = await api(`/api/units?q=${encodeURIComponent(code)}`);
  fill($("unit-options"), ...found.map((u) =>
    el("option", { value: u.code }, `${u.name} · ${unitType(u.unit_type)}`)));
  const exact = found.find((u) => u.code === code);
  if (exact) showUnit(exact);
  else $("unit-card").hidden = true;
}

function showUnit(unit) {
  if (!unit) return;
  loadSendbacks(unit.code);
  if (metrics.length) showForm(unit.unit_type);
  $("unit-card").hidden = false;
  fill($("unit-card"), el("b", {}, unit.name), " ",
    el("span", { class: "muted" }, `${unit.code} · ${unitType(unit.unit_type)}`));
}

function collectValues() {
  const values = {};
  document.querySelectorAll("[data-metric]").forEach((input) => {
    if (input.value !== "") values[input.dataset.metric] = Number(input.value);
  });
  return values;
}

function collectSymptoms() {
  return [...document.querySelectorAll("#symptoms input:checked")].map((box) => box.value);
}

function clearErrors(section) {
  section.querySelectorAll(".invalid").forEach((x) => x.classList.remove("invalid"));
  section.querySelectorAll("[data-error]").forEach((x) => { x.textContent = ""; });
}

// Each refusal goes next to its field ("values.fever" next to the fever box); what names no
// field on the page goes under the form.
function showErrors(errors, fallback, section) {
  const loose = [];
  const find = (selector) => section.querySelector(selector) || $("common").querySelector(selector);
  for (const error of errors) {
    const field = error.field || "";
    const slot = find(`[data-error="${CSS.escape(field)}"]`)
      || find(`[data-error="${CSS.escape(field.split(".")[0])}"]`);
    const input = find(`[data-field="${CSS.escape(field)}"]`);
    if (input && input.closest("details")) input.closest("details").open = true;
    if (input) input.classList.add("invalid");
    if (slot) slot.textContent = (slot.textContent ? slot.textContent + ";" : "") + message(error);
    else loose.push(message(error));
  }
  fallback.hidden = false;
  fallback.classList.add("bad");
  fallback.textContent = loose.length ? loose.join(";") : t("fix_fields");
}

function common() {
  const reporter = $("reporter").value.trim();
  localStorage.setItem("rollcall.reporter", reporter);
  return { unit: $("unit").value.trim().split(" ")[0], day: $("day").value, reporter };
}

function receipt(box, text) {
  box.hidden = false;
  box.classList.remove("bad");
  box.textContent = text;
}

async function send(path, body, box, form, done) {
  const section = form.closest("section");
  clearErrors(section);
  clearErrors($("common"));
  box.hidden = true;
  try {
    const answer = await api(path, { json: body });
    receipt(box, done(answer));
  } catch (error) {
    if (error.errors.length) showErrors(error.errors, box, section);
    else { box.hidden = false; box.classList.add("bad"); box.textContent = error.message; }
  }
}

function reportDone(answer) {
  const what = answer.status === "duplicate" ? t("duplicate")
    : answer.zero ? t("zero_done") : t("accepted");
  return `✓ ${what} · ${answer.unit} · ${answer.day} · ${t("revision")} ${answer.revision}${answer.late ? t("late_note") : ""}`;
}

// The note goes with either report when written; a blank one is no note.
function note() {
  const text = $("note").value.trim();
  return text ? { note: text } : {};
}

$("zero").addEventListener("click", () =>
  send("/api/reports/zero", { ...common(), ...note() }, $("report-receipt"), $("report-form"),
       reportDone));

$("report-form").addEventListener("submit", (event) => {
  event.preventDefault();
  send("/api/reports", { ...common(), values: collectValues(), ...note() }, $("report-receipt"),
       $("report-form"), reportDone);
});

$("case-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const temperature = $("temperature").value;
  const body = {
    unit: common().unit, kind: $("case-kind").value, found_at: $("found-at").value,
    temperature: temperature === "" ? null : Number(temperature),
    symptoms: collectSymptoms(), person_ref: $("person-ref").value.trim(),
  };
  // The incident form's optional fields: sent only when filled in.
  const second = $("second-temperature").value;
  if (second !== "") body.second_temperature = Number(second);
  for (const [id, field] of [["travel-risk-area", "travel_risk_area"], ["contact-with-case", "contact_with_case"]]) {
    if ($(id).value !== "") body[field] = $(id).value === "true";
  }
  if ($("case-action").value) body.action = $("case-action").value;
  send("/api/cases", body, $("case-receipt"), $("case-form"), (answer) =>
    `✓ ${t("case_done")} ${localTime(answer.deadline, true)}${answer.late ? t("late_note") : ""}`);
});

// 退回: a report sent back by the town or county shows here with its reason until the unit's
// correction clears it. "Correct this report" puts the day and the figures sent back into the
// form; the correction goes with its own reason.
let sendbackUnit = null;
async function loadSendbacks(unitCode) {
  sendbackUnit = unitCode;
  let notices = [];
  try { notices = await api(`/api/units/${encodeURIComponent(unitCode)}/sendbacks`); } catch (_) { notices = []; }
  if (sendbackUnit !== unitCode) return;
  const open = notices.filter((n) => n.status === "open");
  $("sendbacks").hidden = !open.length;
  fill($("sendback-list"), open.map((n) => el("div", { class: "sendback-notice", dataset: { day: n.day } },
    el("p", {}, el("b", {}, `${n.day} · ${t("revision")} ${n.revision}`), " · ", el("span", { class: "reason" }, n.reason)),
    el("p", { class: "muted small" }, `${t("sendback_by")} ${n.sent_by || ""} · ${localTime(n.sent_at, true)}`),
    el("form", { class: "correction", onsubmit: (e) => { e.preventDefault(); correct(unitCode, n, e.target); } },
      el("button", { type: "button", class: "btn small", onclick: () => prefill(unitCode, n) }, t("correct_this")),
      el("label", {}, el("span", {}, t("correction_reason")),
        el("input", { name: "reason", maxlength: "500", required: true, "data-field": "reason" }),
        el("span", { class: "field-error", "data-error": "reason" })),
      el("button", { type: "submit", class: "btn primary" }, t("submit_correction"))),
    el("div", { class: "receipt", hidden: true }))));
}

async function prefill(unitCode, notice) {
  $("day").value = notice.day;
  const history = await api(`/api/units/${encodeURIComponent(unitCode)}`);
  const sent = history.reports.find((r) => r.day === notice.day && r.revision === notice.revision);
  if (!sent) return;
  document.querySelectorAll("[data-metric]").forEach((input) => {
    const value = sent.values[input.dataset.metric];
    input.value = value === undefined ? "" : value;
  });
  $("report-form").scrollIntoView({ behavior: "smooth" });
}

async function correct(unitCode, notice, form) {
  const box = form.parentElement.querySelector(".receipt");
  const body = { values: collectValues(), reporter: common().reporter,
                 reason: form.reason.value.trim(), ...note() };
  await send(`/api/reports/${encodeURIComponent(unitCode)}/${notice.day}/corrections`, body, box,
             form, (answer) => `✓ ${t("corrected_done")} · ${t("revision")} ${answer.revision}`);
  if (box.classList.contains("bad")) return;
  // The send-back is cleared once the review has taken the correction in: look again a few
  // times, then leave the notice to the next visit.
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await loadSendbacks(unitCode);
    if (!document.querySelector(`.sendback-notice[data-day="${notice.day}"]`)) return;
  }
}

start();
