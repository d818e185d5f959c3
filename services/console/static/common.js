// Shared by every page: the language switch (Chinese by default), calls to the console's API,
// and small formatting helpers. No build step, no external scripts.
"use strict";

const $ = (id) => document.getElementById(id);

// Each key once, with its text in both languages [Chinese, English]: neither can lack one.
const I18N = {
  app_title: ["疫情防控每日报送指挥平台", "Daily Epidemic Reporting — Command Centre"],
  console: ["指挥看板", "Console"], report_form: ["单位报送", "Unit report"],
  summary: ["日报/通报", "Daily summary"], live: ["实时", "Live"], offline: ["重连中…", "Reconnecting…"],
  sign_out: ["退出", "Sign out"], lang: ["EN", "中文"], sign_in_title: ["值班人员登录", "Operator sign-in"],
  sign_in_hint: ["请粘贴本级指挥部发放的访问令牌(rc_ 开头)。令牌只保存在本浏览器。", "Paste the access token your command centre issued (starts with rc_). It stays in this browser only."],
  token: ["访问令牌", "Access token"], sign_in: ["登录", "Sign in"], day: ["日期", "Day"],
  today: ["今天", "Today"], expected: ["应报单位", "Expected"], reported: ["已报", "Reported"],
  zero: ["零报告", "Zero reports"], late: ["迟报", "Late"], missing: ["漏报", "Missing"],
  pending: ["待报", "Pending"], exempt: ["免报", "Exempt"], pending_title: ["待报单位", "Pending units"],
  exempt_title: ["免报单位", "Exempt units"], next_cutoff: ["下一截止", "Next cutoff"],
  no_cutoff: ["今日截止时间均已过", "No cutoff left today"], final_reporting_rate: ["全天报告率", "Day's rate"],
  status_pending: ["待报", "Pending"], status_exempt: ["免报", "Exempt"], cutoff: ["截止", "cutoff"],
  calendar_title: ["免报日历", "Calendars (exempt)"], declare: ["新增免报", "Declare"],
  end_calendar: ["结束", "End"], valid_from: ["开始日期", "From"], valid_to: ["结束日期(含)", "To (inclusive)"],
  weekday: ["每周休息日", "Weekly rest day"], every_day: ["每天", "Every day"],
  scope_node: ["区划(含下级)", "Area (and below)"],
  scope_unit: ["单位代码(仅此单位)", "Unit code (this unit only)"], all_types: ["全部类型", "All types"],
  declared_by: ["登记人", "Declared by"], weekdays: ["一二三四五六日", "MTWTFSS"], on_time: ["按时", "On time"],
  reporting_rate: ["报告率", "Reporting rate"], on_time_rate: ["及时率", "On-time rate"],
  children_title: ["下级报送情况", "Reporting below"], units_title: ["单位报送情况", "Units"],
  alerts_title: ["待处置预警", "Open alerts"], missing_title: ["漏报单位", "Missing units"],
  late_title: ["迟报单位", "Late units"], none: ["暂无", "None"],
  all_clear: ["全部按时报送", "Everyone reported on time"], no_alerts: ["当前没有待处置预警", "No open alerts"],
  acknowledge: ["确认接收", "Acknowledge"], close_alert: ["办结", "Close"],
  acknowledged: ["已确认", "Acknowledged"], open: ["待处置", "Open"], closed: ["已办结", "Closed"],
  overdue: ["已超时", "Overdue"], left: ["剩余", "left"], escalated: ["已升级", "Escalated"],
  late_case: ["迟报病例", "Reported late"], kind_case: ["病例预警", "Case"],
  kind_outbreak: ["聚集性疫情", "Outbreak"], kind_missing_report: ["漏报预警", "Missing report"],
  kind_supply_low: ["物资储备不足", "Supplies low"], kind_missing_confirmation: ["未确认上报", "Not confirmed"],
  kind_test_overdue: ["核酸检测逾期", "Test overdue"], kind_release_overdue: ["解除逾期", "Release overdue"],
  kind_team_signoff_missing: ["包保签字缺失", "Team sign-off missing"], fever: ["发热", "Fever"],
  ili: ["流感样病例", "Flu-like illness"], outcome: ["处置结果", "Outcome"], note: ["备注", "Note"],
  isolated: ["已隔离", "Isolated"], referred: ["已转诊发热门诊", "Referred to fever clinic"],
  excluded: ["已排除", "Excluded"], other: ["其他", "Other"], submit: ["提交", "Submit"],
  cancel: ["取消", "Cancel"], history: ["报送记录", "Report history"], revision: ["版本", "Rev."],
  submitted_at: ["报送时间", "Submitted"], reporter: ["报送人", "Reporter"],
  reason: ["更正原因", "Correction reason"], values: ["数据", "Values"], cases: ["病例", "Cases"],
  no_reports: ["尚无报送记录", "No reports yet"], notes_title: ["单位备注", "Units' notes"],
  below_minimum: ["低于最低储备", "Below minimum reserve"],
  note_placeholder: ["有特殊情况请说明(不得填写身份证号、电话号码)", "Anything special to report (no ID-card or phone numbers)"],
  status_reported: ["已报", "Reported"], status_zero: ["零报告", "Zero report"],
  status_missing: ["漏报", "Missing"], status_late: ["迟报", "Late"], unit: ["单位", "Unit"],
  type: ["类型", "Type"], node: ["所属区划", "Area"], code: ["代码", "Code"], name: ["名称", "Name"],
  print: ["打印", "Print"], download_csv: ["下载 CSV", "Download CSV"],
  summary_title: ["疫情防控每日通报", "Daily epidemic prevention summary"],
  bulletin: ["周通报", "Weekly bulletin"], bulletin_title: ["疫情防控报送通报", "Reporting bulletin"],
  lowest_rates: ["报告率最低的下级", "Lowest reporting rates"],
  worst_units: ["漏报、迟报最多的单位", "Most missing and late days"], rank: ["名次", "Rank"],
  corrected: ["更正", "Corrected"], sent_back: ["已退回", "Sent back"],
  flags_title: ["疑似瞒报", "Suspected concealment"], flags: ["疑似瞒报", "Flags"],
  flag_zero_with_case: ["零报告但当日报送了病例", "Zero report on a day with a case"],
  flag_identical_values: ["数据连续多日完全相同", "Identical values day after day"],
  flag_open: ["待核实", "Open"], flag_dismissed: ["已排除", "Dismissed"], dismiss: ["排除", "Dismiss"],
  dismiss_reason: ["排除理由(必填,留痕)", "Reason (required, kept)"], dismissed_by: ["排除人", "Dismissed by"],
  flags_note: ["疑似瞒报标记不改变任何数据;核实后可填写理由排除,排除记录永久保留。", "Flags never change the figures; once checked, dismiss one with a reason, which is kept for good."],
  download_xlsx: ["下载 Excel", "Download Excel"],
  summary_title_day: ["疫情防控日报", "Daily epidemic prevention summary"],
  summary_title_week: ["疫情防控周报", "Weekly epidemic prevention summary"],
  summary_title_month: ["疫情防控月报", "Monthly epidemic prevention summary"],
  summary_title_range: ["疫情防控汇总表", "Epidemic prevention summary"], doc_notes: ["备注", "Notes"],
  signed_by: ["填报人", "Filled in by"], checked_by: ["审核人", "Checked by"],
  signed_at: ["填报时间", "Filled in at"], seal: ["盖章", "Seal"], trend: ["趋势", "Trend"],
  trend_title: ["趋势与累计", "Trend and running totals"],
  trend_summary: ["该期间汇总表", "Summary of the period"], this_week: ["本周", "This week"],
  this_month: ["本月", "This month"], last_30: ["近30天", "Last 30 days"], start: ["开始", "Start"],
  end: ["结束", "End"], since: ["累计起始", "Running total from"], metric: ["指标", "Metric"],
  show: ["查看", "Show"], period_totals: ["期间合计", "Totals of the period"], daily: ["每日", "daily"],
  running_total: ["累计", "Running total"], period_total: ["期间合计值", "Period's total"],
  fold: ["汇总方式", "Over days"], measure: ["单位", "Unit"], unit_days: ["单位·日", "Unit-days"],
  over_days_sum: ["逐日相加", "summed"], over_days_last: ["取期末值", "last day's"],
  over_days_max: ["取最高", "highest"], over_days_min: ["取最低", "lowest"],
  over_days_average: ["日均", "daily average"],
  flow_note: ["逐日相加的指标:实线为每日数,虚线为自累计起始日起的累计数(右轴)。", "A flow: the solid line is each day's figure, the dashed one the running total since its start (right axis)."],
  stock_note: ["存量指标(如居家观察人数):期间合计取最后一日的数值,不累加。", "A stock (e.g. people under home observation): the period's figure is its last day's, never a sum."],
  generated: ["生成时间", "Generated"],
  rollup_table: ["各地报送与监测汇总", "Reporting and surveillance by area"],
  day_alerts: ["当日预警", "Alerts of the day"], back: ["返回看板", "Back to console"],
  fever_cases: ["发热病例", "Fever cases"], ili_cases: ["流感样病例", "Flu-like cases"],
  updated: ["已更新", "Updated"], by: ["处理人", "By"], started: ["发现/开始", "Found/started"],
  deadline: ["时限", "Deadline"], new_alert: ["新预警", "New alert"], whole_area: ["全辖区", "Whole area"],
  drill_hint: ["点击下级查看详情", "Click an area to drill down"],
  unit_history: ["单位报送记录", "Unit report history"], close: ["关闭", "Close"],
  escalations: ["升级次数", "Escalations"], form_title: ["单位每日报送", "Daily unit report"],
  form_sign_in: ["报送人员登录", "Reporter sign-in"],
  form_sign_in_hint: ["请粘贴本单位的报送令牌(rc_ 开头),由乡镇或县指挥部发放。", "Paste your unit's reporting token (starts with rc_), issued by the town or county command centre."],
  unit_search: ["输入单位名称或代码", "Unit name or code"], reporter_hint: ["报送人姓名", "Your name"],
  daily_report: ["今日报告", "Today's report"],
  daily_hint: ["无异常情况请直接点击零报告;有数据请填写后提交", "Nothing to report? One click sends the zero report. Otherwise fill in and submit."],
  zero_button: ["✓ 今日无异常,一键零报告", "✓ All clear today: send zero report"],
  submit_report: ["提交日报", "Submit report"],
  case_title: ["发现发热/流感样病例(须两小时内报告)", "Fever or flu-like case found (report within two hours)"],
  case_kind: ["病例类型", "Kind"], found_at: ["发现时间", "Found at"],
  temperature: ["体温(°C)", "Temperature (°C)"],
  person_ref: ["人员编号(不填姓名)", "Person reference (no names)"], symptoms: ["症状", "Symptoms"],
  submit_case: ["上报病例", "Report case"], accepted: ["已受理", "Accepted"],
  duplicate: ["已收到(重复提交,未作改动)", "Already received (a retry, nothing changed)"],
  zero_done: ["零报告已提交", "Zero report sent"],
  late_note: ["(已过截止时间,记为迟报)", " (after the cutoff: counted as late)"],
  case_done: ["病例已上报,预警时限", "Case reported; alert deadline"],
  fix_fields: ["请按提示修改标红的内容", "Please correct the fields marked in red"],
  more_metrics: ["更多指标", "More metrics"], pick_unit: ["请选择单位", "Choose a unit"],
  cough: ["咳嗽", "Cough"], sore_throat: ["咽痛", "Sore throat"], headache: ["头痛", "Headache"],
  fatigue: ["乏力", "Fatigue"], muscle_ache: ["肌肉酸痛", "Muscle ache"], runny_nose: ["流涕", "Runny nose"],
  diarrhea: ["腹泻", "Diarrhoea"], rash: ["皮疹", "Rash"],
  second_temperature: ["复测体温(°C)", "Second reading (°C)"],
  travel_risk_area: ["近期有风险地区旅居史", "Recently in a risk area"],
  contact_with_case: ["有确诊或疑似病例接触史", "Contact with a confirmed or suspected case"],
  action: ["处置措施", "Action taken"], unknown: ["未询问", "Not asked"], yes: ["是", "Yes"],
  no: ["否", "No"], action_isolated: ["应急隔离", "Isolated on site"],
  action_referred: ["转诊发热门诊", "Referred to a fever clinic"],
  action_sent_home: ["家长接回", "Sent home with a parent"],
  action_observed: ["留观", "Kept for observation"], action_other: ["其他", "Other"],
  control: ["管控台账", "People under control"],
  control_title: ["管控台账(一人一案)", "People under control (一人一案)"], register: ["在管人员", "Under control"],
  tests_due: ["今日核酸检测", "Tests due today"], releases_due: ["待解除", "Releases due"],
  signoffs: ["包保签字", "Team sign-off"], pseudonym: ["编号", "Ref."], person_name: ["姓名", "Name"],
  category: ["类别", "Category"], regime: ["管控方式", "Regime"], phase: ["阶段", "Phase"],
  place: ["地点", "Place"], start_day: ["开始日期", "Start"], planned_release: ["计划解除", "Planned release"],
  record_test: ["录入阴性", "Record negative"], release_now: ["解除", "Release"], sign: ["签字", "Sign"],
  signed: ["已签", "Signed"], done: ["已完成", "Done"], overdue_day: ["逾期", "Overdue"],
  home: ["居家", "Home"], nobody: ["暂无", "Nobody"], missing_signoffs: ["缺签人数", "Missing sign-offs"],
  phase_central_isolation: ["集中隔离", "Central isolation"],
  phase_home_isolation: ["居家隔离", "Home isolation"],
  phase_home_health_monitoring: ["居家健康监测", "Home health monitoring"], review: ["审核上报", "Review"],
  review_title: ["审核与确认上报", "Review and confirm"], confirm_panel: ["确认上报", "Confirm the day"],
  children_panel: ["下级确认情况", "Below: confirmations"], units_panel: ["报告审核", "Reports to review"],
  confirm_button: ["确认上报", "Confirm the day"], confirm_again: ["重新确认上报", "Confirm again"],
  confirmed_done: ["已确认上报", "Day confirmed"], sent_back_done: ["已退回", "Sent back"],
  st_confirmed: ["已确认", "Confirmed"], st_unconfirmed: ["未确认", "Unconfirmed"],
  st_reopened: ["确认后更正,待重新确认", "Changed after confirmation: confirm again"],
  st_not_required: ["本级无需确认", "Not confirmed at this level"], confirmed_at: ["确认时间", "Confirmed at"],
  confirmed_by: ["确认人", "By"], confirmed_figures: ["确认数", "Confirmed"],
  live_figures: ["当前数(未确认)", "Live (unconfirmed)"], live_now: ["当前数", "Live"],
  difference: ["差额", "Difference"], due_by: ["确认时限", "Due by"],
  changed_after: ["确认后有更正", "Changed after confirmation"], not_reported: ["未报", "Not reported"],
  send_back: ["退回", "Send back"], send_back_reason: ["退回原因", "Reason"],
  sendback_open: ["待更正", "Awaiting correction"], sendback_cleared: ["已更正", "Corrected"],
  revision_short: ["版", "rev."], zero_short: ["零报告", "zero report"], late_short: ["迟报", "late"],
  no_units: ["辖区内没有报告单位", "No reporting units here"],
  sendbacks_title: ["被退回的报告", "Reports sent back"], sendback_by: ["退回人", "Sent back by"],
  correct_this: ["更正此报告", "Correct this report"],
  correction_reason: ["更正原因", "Reason for the correction"],
  submit_correction: ["提交更正", "Send correction"], corrected_done: ["已提交更正", "Correction sent"],
  open_sendbacks: ["待更正的退回", "Sent back, not corrected"], status: ["状态", "Status"],
  figures: ["数据", "Figures"], roster: ["值班表", "Duty roster"], roster_title: ["值班表", "Duty roster"],
  add_shift: ["新增班次", "Add shift"], save: ["保存", "Save"], saved: ["已保存", "Saved"],
  person: ["人员", "Person"], role: ["职责", "Role"], starts: ["开始", "From"], ends: ["结束", "To"],
  whole_day: ["全天", "All day"], remove: ["删除", "Remove"], role_on_duty: ["值班", "On duty"],
  role_leader: ["带班领导", "Duty leader"], role_unit_in_charge: ["第一责任人", "In charge"],
  role_unit_reporter: ["信息员", "Reporting officer"], role_in_charge: ["第一责任人", "In charge"],
  role_reporter: ["信息员", "Reporting officer"],
  no_shifts: ["当日尚未排班", "Nobody on the roster for this day"],
  roster_hint: ["值班人员收到本级预警;升级预警报告带班领导。", "Whoever is on duty hears of this level's alerts; escalations go to the duty leader."],
  deliveries: ["通知送达", "Notifications"],
  deliveries_unavailable: ["通知服务暂不可用,送达情况未知", "Notification service unavailable: delivery state unknown"],
  no_deliveries: ["尚未通知任何人", "Nobody told yet"], details: ["详情", "Details"],
  alert_history: ["预警经过", "Alert history"], channel_sms: ["短信", "SMS"],
  channel_email: ["邮件", "E-mail"], channel_wecom: ["企业微信", "WeCom"],
  channel_dingtalk: ["钉钉", "DingTalk"], channel_none: ["无联系方式", "No channel"],
  d_sent: ["已发送", "sent"], d_delivered: ["已送达", "delivered"], d_failed: ["发送失败", "failed"],
  d_pending: ["待发送", "pending"], d_cancelled: ["已取消", "cancelled"], retrying: ["重试中", "retrying"],
  attempts: ["尝试次数", "Attempts"], time: ["时间", "Time"], change_opened: ["发出", "Opened"],
  change_warned: ["临近时限提醒", "Warned"], change_escalated: ["升级", "Escalated"],
  change_acknowledged: ["确认接收", "Acknowledged"], change_closed: ["办结", "Closed"],
  change_resolved: ["已补报", "Resolved"], change_units_exempted: ["免报移出", "Units exempted"],
};

const UNIT_TYPES = {
  village_committee: ["村(居)委会", "Village committee"], primary_school: ["小学", "Primary school"],
  middle_school: ["中学", "Middle school"], kindergarten: ["幼儿园", "Kindergarten"],
  village_clinic: ["村卫生室", "Village clinic"], township_health_centre: ["乡镇卫生院", "Health centre"],
  private_clinic: ["个体诊所", "Private clinic"], hospital: ["县级医院", "County hospital"],
  pharmacy: ["药店", "Pharmacy"], enterprise: ["企业", "Enterprise"], market: ["农贸市场", "Market"],
  care_home: ["养老机构", "Care home"], hotel: ["宾馆酒店", "Hotel"], restaurant: ["餐饮单位", "Restaurant"],
  construction_site: ["建筑工地", "Construction site"], training_institution: ["校外培训机构", "Training institution"],
  checkpoint: ["卡点", "Checkpoint"], isolation_site: ["集中隔离点", "Isolation site"],
  government_department: ["机关单位", "Government department"],
};

let LANG = localStorage.getItem("rollcall.lang") || "zh";

function t(key) {
  const pair = I18N[key];
  return pair ? pair[LANG === "zh" ? 0 : 1] || pair[0] : key;
}

function unitType(code) {
  const pair = UNIT_TYPES[code];
  return pair ? pair[LANG === "zh" ? 0 : 1] : (code || "");
}

function metricName(metric) {
  return LANG === "zh" ? metric.name_zh : metric.name_en;
}

function message(error) {
  return LANG === "zh" ? error.message_zh : error.message_en;
}

function applyI18n(root = document) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  });
}

function setLang(lang) {
  LANG = lang;
  localStorage.setItem("rollcall.lang", lang);
  applyI18n();
  document.dispatchEvent(new CustomEvent("langchange"));
}

function toggleLang() { setLang(LANG === "zh" ? "en" : "zh"); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.errors = (body && body.errors) || [];
  }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  // Every page asks who is signed in first; the answer carries the deployment's zone.
  if (body && typeof body.zone === "string" && (path === "/api/me" || path === "/api/session")) {
    setZone(body.zone);
  }
  return body;
}

// A token handed over in the address (#token=…) signs in once and leaves the address bar.
async function signInFromHash() {
  const match = location.hash.match(/token=([^&]+)/);
  if (!match) return false;
  history.replaceState(null, "", location.pathname + location.search);
  try {
    await api("/api/session", { json: { token: decodeURIComponent(match[1]) } });
    return true;
  } catch (_) { return false; }
}

// An operator's page starts here: its language, a token handed over in the address, then who is
// signed in; nobody is (null), and the page gives way to the front page's sign-in.
async function operatorStart() {
  applyI18n();
  await signInFromHash();
  try {
    return await api("/api/me");
  } catch (_) {
    location.href = "/";
    return null;
  }
}

// A page of one node's day (control, roster, review): both from the address, by default the
// operator's own node and today; the day picker shows the day and loads another.
function nodeDay(me, state, load) {
  const p = new URLSearchParams(location.search);
  state.node = p.get("node") || me.scope;
  state.day = p.get("day") || me.today;
  $("day").value = state.day;
  $("day").addEventListener("change", () => { state.day = $("day").value || state.day; load(); });
}

// The language button names the other language; a switch draws the page again (redraw).
function langButton(redraw) {
  $("lang").textContent = t("lang");
  $("lang").addEventListener("click", toggleLang);
  document.addEventListener("langchange", () => { $("lang").textContent = t("lang"); redraw(); });
}

// A refused call's field errors in the page's language, or its message.
function failure(error) {
  return error.errors.length ? error.errors.map(message).join(";") : error.message;
}

// A failed call shown in `where`; a session that ended sends the page back to sign in.
function showFailure(where, error) {
  if (error.status === 401) { location.href = "/"; return; }
  where.textContent = failure(error);
}

function toast(text, bad = false) {
  const node = $("toast");
  node.textContent = text;
  node.classList.toggle("bad", bad);
  node.hidden = false;
  clearTimeout(node._timer);
  node._timer = setTimeout(() => { node.hidden = true; }, 4000);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function pct(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

function num(value) {
  if (value === null || value === undefined) return "0";
  return Number.isInteger(value) ? value.toLocaleString("zh-CN") : String(+value.toFixed(2));
}

// Times are the deployment's (its zone comes with /api/me), never the browser's: an operator
// whose laptop is set to UTC still sees a report sent at 08:54 in Shanghai as 08:54.
let ZONE = "Asia/Shanghai";
const FORMATS = new Map();

function setZone(zone) { if (zone) { ZONE = zone; FORMATS.clear(); } }

function zoneParts(iso) {
  if (!FORMATS.has(ZONE)) {
    FORMATS.set(ZONE, new Intl.DateTimeFormat("en-GB", {
      timeZone: ZONE, month: "numeric", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23" }));
  }
  const parts = {};
  for (const p of FORMATS.get(ZONE).formatToParts(new Date(iso))) parts[p.type] = p.value;
  return parts;
}

function localTime(iso, withDate = false, withSeconds = false) {
  if (!iso) return "";
  const p = zoneParts(iso);
  const time = `${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ""}`;
  return withDate ? `${p.month}-${p.day} ${time}` : time;
}

function rateClass(rate) {
  if (rate === null || rate === undefined) return "rate-none";
  if (rate >= 0.95) return "rate-good";
  if (rate >= 0.8) return "rate-fair";
  if (rate >= 0.5) return "rate-poor";
  return "rate-bad";
}

function todayIn(zoneToday) { return zoneToday || new Date().toISOString().slice(0, 10); }

// Like replaceChildren, without turning an absent part (null, false) into the text "null".
function fill(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// One delivery as a line: "短信已发送 13:30 张某", "短信已送达 13:31 张某" once the gateway's
// receipt says it reached the phone, or failed with its reason.
function deliveryText(d) {
  return toldLine(d.channel, d.status, d.delivered_at || d.sent_at || d.created_at,
                  d.person_name, d.last_error);
}

function toldLine(channel, status, at, person, reason) {
  const what = LANG === "zh" ? `${t(`channel_${channel}`)}${t(`d_${status}`)}`
    : `${t(`channel_${channel}`)} ${t(`d_${status}`)}`;
  const why = status === "failed" && reason ? `(${reason})` : "";
  return `${what} ${localTime(at)} ${person}${why}`;
}
