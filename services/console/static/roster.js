// A node's duty roster for a day (值班和领导带班): who is on duty and who leads, per shift, read
// and replaced through the console's backend (notify holds the staff records).
"use strict";

const ROLES = ["on_duty", "leader"];
const state = { node: null, day: null, people: [], shifts: [] };

async function start() {
  const me = await operatorStart();
  if (!me) return;
  nodeDay(me, state, load);
  await load();
}

async function load() {
  $("error").textContent = "";
  try {
    const roster = await api(`/api/rosters/${state.node}/${state.day}`);
    $("node-name").textContent = roster.node_name || roster.node;
    state.people = roster.people;
    state.shifts = roster.shifts.map((s) => ({ ...s }));
  } catch (error) {
    state.shifts = [];
    showFailure($("error"), error);
  }
  render();
}

function hhmm(value) { return value ? value.slice(0, 5) : ""; }

function render() {
  if (!state.shifts.length) {
    fill($("shifts"), el("p", { class: "muted empty" }, t("no_shifts")));
    return;
  }
  fill($("shifts"), el("table", { class: "table shifts" },
    el("thead", {}, el("tr", {}, el("th", {}, t("person")), el("th", {}, t("role")),
      el("th", {}, t("starts")), el("th", {}, t("ends")), el("th", {}))),
    el("tbody", {}, state.shifts.map((shift, i) => el("tr", { dataset: { shift: i } },
      el("td", {}, el("select", { name: "person", onchange: (e) => { shift.person = e.target.value; } },
        state.people.map((p) => el("option", { value: p.code, selected: p.code === shift.person },
          `${p.name}(${p.code})`)))),
      el("td", {}, el("select", { name: "role", onchange: (e) => { shift.role = e.target.value; } },
        ROLES.map((r) => el("option", { value: r, selected: r === shift.role }, t(`role_${r}`))))),
      el("td", {}, el("input", { type: "time", name: "starts", value: hhmm(shift.starts),
                                 onchange: (e) => { shift.starts = e.target.value || null; } })),
      el("td", {}, el("input", { type: "time", name: "ends", value: hhmm(shift.ends),
                                 placeholder: t("whole_day"),
                                 onchange: (e) => { shift.ends = e.target.value || null; } })),
      el("td", {}, el("button", { type: "button", class: "btn small", onclick: () => {
        state.shifts.splice(i, 1); render(); } }, t("remove"))))))));
}

async function save() {
  $("error").textContent = "";
  const shifts = state.shifts.map((s) => ({ person: s.person, role: s.role,
    starts: s.starts ? hhmm(s.starts) : null, ends: s.ends ? hhmm(s.ends) : null }));
  try {
    await api(`/api/rosters/${state.node}/${state.day}`, { method: "PUT", json: { shifts } });
    toast(t("saved"));
    await load();
  } catch (error) {
    showFailure($("error"), error);
  }
}

$("add").addEventListener("click", () => {
  if (!state.people.length) return;
  state.shifts.push({ person: state.people[0].code, role: "on_duty", starts: null, ends: null });
  render();
});
$("save").addEventListener("click", save);
langButton(render);

start();
