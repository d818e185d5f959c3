// 一人一案: the register of people under control in the operator's area, the day's tests and
// releases due and the 包保 team's sign-offs, read and recorded through the console's backend
// (the ledger holds the files; names reach only village and town operators).
"use strict";

const state = { node: null, day: null };

async function start() {
  const me = await operatorStart();
  if (!me) return;
  nodeDay(me, state, load);
  await load();
}

function who(p) {
  return p.name ? `${p.name}(${p.pseudonym})` : p.pseudonym;
}

function phaseName(code) { return code ? t(`phase_${code}`) : "—"; }

async function load() {
  $("error").textContent = "";
  const q = `node=${state.node}&day=${state.day}`;
  try {
    const [due, people, missing] = await Promise.all([
      api(`/api/control/due?${q}`), api(`/api/control/people?node=${state.node}`),
      api(`/api/control/signoffs-missing?${q}`)]);
    $("node-name").textContent = state.node;
    $("missing-count").textContent = missing.missing;
    render(due, people);
  } catch (error) {
    showFailure($("error"), error);
  }
}

function empty() { return el("p", { class: "muted empty" }, t("nobody")); }

function render(due, people) {
  fill($("tests"), due.tests.length ? el("table", { class: "table" },
    el("tbody", {}, due.tests.map((c) => el("tr", { dataset: { person: c.person_id } },
      el("td", {}, who(c)), el("td", {}, c.day),
      el("td", {}, c.done ? el("span", { class: "ok" }, t("done"))
        : el("button", { type: "button", class: "btn small", name: "test",
                         onclick: () => act(c.person_id, "tests", { day: c.day, result: "negative" }) },
             t("record_test")))))))
    : empty());
  fill($("releases"), due.releases.length ? el("table", { class: "table" },
    el("tbody", {}, due.releases.map((c) => el("tr", { dataset: { person: c.person_id } },
      el("td", {}, who(c)), el("td", {}, phaseName(c.phase)), el("td", {}, c.planned),
      el("td", {}, c.overdue ? el("span", { class: "overdue" }, t("overdue_day")) : ""),
      el("td", {}, el("button", { type: "button", class: "btn small", name: "release",
                                  onclick: () => act(c.person_id, "release", { day: state.day }) },
                      t("release_now")))))))
    : empty());
  fill($("signoffs"), due.signoffs.length ? el("table", { class: "table" },
    el("tbody", {}, due.signoffs.map((s) => el("tr", { dataset: { person: s.person_id } },
      el("td", {}, who(s)),
      el("td", {}, s.team.map((m) => el("span", { class: "member" }, `${m.staff} `,
        m.signed_at ? el("span", { class: "ok" }, `${t("signed")} ${localTime(m.signed_at)}`)
          : el("button", { type: "button", class: "btn small", name: "sign",
                           onclick: () => act(s.person_id, "signoffs", { day: state.day, seat: m.seat }) },
               t("sign")), " "))),
      el("td", {}, s.complete ? el("span", { class: "ok" }, t("done")) : "")))))
    : empty());
  fill($("register"), people.length ? el("table", { class: "table" },
    el("thead", {}, el("tr", {}, el("th", {}, t("pseudonym")), el("th", {}, t("person_name")),
      el("th", {}, t("category")), el("th", {}, t("regime")), el("th", {}, t("phase")),
      el("th", {}, t("place")), el("th", {}, t("start_day")), el("th", {}, t("planned_release")))),
    el("tbody", {}, people.map((p) => el("tr", { dataset: { person: p.person_id } },
      el("td", {}, p.pseudonym), el("td", { class: "name" }, p.name || "—"),
      el("td", {}, p.category), el("td", {}, p.regime), el("td", {}, phaseName(p.phase)),
      el("td", {}, p.place === "home" ? t("home") : (p.place || "—")),
      el("td", {}, p.start_day), el("td", {}, p.planned_release)))))
    : empty());
}

async function act(personId, action, body) {
  $("error").textContent = "";
  try {
    await api(`/api/control/people/${personId}/${action}`, { json: body });
    toast(t("saved"));
    await load();
  } catch (error) {
    showFailure($("error"), error);
  }
}

langButton(load);

start();
