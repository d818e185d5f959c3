// Shared by every page: the language switch (Chinese by default), calls to the console's API,
// and small formatting helpers. No build step, no external scripts.
"use strict";

const I18N = {
  zh: {
    app_title: "疫情防控每日报送指挥平台",
    console: "指挥看板", report_form: "单位报送", summary: "日报/通报",
    live: "实时", offline: "重连中…", sign_out: "退出", lang: "EN",
    sign_in_title: "值班人员登录", sign_in_hint: "请粘贴本级指挥部发放的访问令牌(rc_ 开头)。令牌只保存在本浏览器。",
    token: "访问令牌", sign_in: "登录", day: "日期", today: "今天",
    expected: "应报单位", reported: "已报", zero: "零报告", late: "迟报", missing: "漏报",
    pending: "待报", exempt: "免报", pending_title: "待报单位", exempt_title: "免报单位",
    next_cutoff: "下一截止", no_cutoff: "今日截止时间均已过", final_reporting_rate: "全天报告率",
    status_pending: "待报", status_exempt: "免报", cutoff: "截止",
    calendar_title: "免报日历", declare: "新增免报", end_calendar: "结束", valid_from: "开始日期",
    valid_to: "结束日期(含)", weekday: "每周休息日", every_day: "每天", scope_node: "区划(含下级)",
    scope_unit: "单位代码(仅此单位)", all_types: "全部类型", declared_by: "登记人",
    weekdays: "一二三四五六日",
    on_time: "按时", reporting_rate: "报告率", on_time_rate: "及时率",
    children_title: "下级报送情况", units_title: "单位报送情况", alerts_title: "待处置预警",
    missing_title: "漏报单位", late_title: "迟报单位", none: "暂无", all_clear: "全部按时报送",
    no_alerts: "当前没有待处置预警", acknowledge: "确认接收", close_alert: "办结",
    acknowledged: "已确认", open: "待处置", closed: "已办结", overdue: "已超时", left: "剩余",
    escalated: "已升级", late_case: "迟报病例",
    kind_case: "病例预警", kind_outbreak: "聚集性疫情", kind_missing_report: "漏报预警", kind_supply_low: "物资储备不足", kind_missing_confirmation: "未确认上报", kind_test_overdue: "核酸检测逾期", kind_release_overdue: "解除逾期", kind_team_signoff_missing: "包保签字缺失",
    fever: "发热", ili: "流感样病例",
    outcome: "处置结果", note: "处置说明", isolated: "已隔离", referred: "已转诊发热门诊",
    excluded: "已排除", other: "其他", submit: "提交", cancel: "取消",
    history: "报送记录", revision: "版本", submitted_at: "报送时间", reporter: "报送人",
    reason: "更正原因", values: "数据", cases: "病例", no_reports: "尚无报送记录",
    note: "备注", notes_title: "单位备注", below_minimum: "低于最低储备", note_placeholder: "有特殊情况请说明(不得填写身份证号、电话号码)",
    status_reported: "已报", status_zero: "零报告", status_missing: "漏报", status_late: "迟报",
    unit: "单位", type: "类型", node: "所属区划", code: "代码", name: "名称",
    print: "打印", download_csv: "下载 CSV", summary_title: "疫情防控每日通报",
    download_xlsx: "下载 Excel", summary_title_day: "疫情防控日报", summary_title_week: "疫情防控周报",
    summary_title_month: "疫情防控月报", summary_title_range: "疫情防控汇总表", doc_notes: "备注",
    signed_by: "填报人", checked_by: "审核人", signed_at: "填报时间", seal: "盖章",
    trend: "趋势", trend_title: "趋势与累计", trend_summary: "该期间汇总表", this_week: "本周", this_month: "本月",
    last_30: "近30天", start: "开始", end: "结束", since: "累计起始", metric: "指标", show: "查看",
    period_totals: "期间合计", daily: "每日", running_total: "累计", period_total: "期间合计值",
    fold: "汇总方式", measure: "单位", unit_days: "单位·日",
    over_days_sum: "逐日相加", over_days_last: "取期末值", over_days_max: "取最高", over_days_min: "取最低",
    over_days_average: "日均",
    flow_note: "逐日相加的指标:实线为每日数,虚线为自累计起始日起的累计数(右轴)。",
    stock_note: "存量指标(如居家观察人数):期间合计取最后一日的数值,不累加。",
    generated: "生成时间", rollup_table: "各地报送与监测汇总", day_alerts: "当日预警",
    back: "返回看板", fever_cases: "发热病例", ili_cases: "流感样病例",
    updated: "已更新", by: "处理人", started: "发现/开始", deadline: "时限",
    new_alert: "新预警", whole_area: "全辖区", drill_hint: "点击下级查看详情",
    unit_history: "单位报送记录", close: "关闭", escalations: "升级次数",
    form_title: "单位每日报送", form_sign_in: "报送人员登录",
    form_sign_in_hint: "请粘贴本单位的报送令牌(rc_ 开头),由乡镇或县指挥部发放。",
    unit_search: "输入单位名称或代码", reporter_hint: "报送人姓名", daily_report: "今日报告",
    daily_hint: "无异常情况请直接点击零报告;有数据请填写后提交",
    zero_button: "✓ 今日无异常,一键零报告", submit_report: "提交日报",
    case_title: "发现发热/流感样病例(须两小时内报告)", case_kind: "病例类型", found_at: "发现时间",
    temperature: "体温(°C)", person_ref: "人员编号(不填姓名)", symptoms: "症状", submit_case: "上报病例",
    accepted: "已受理", duplicate: "已收到(重复提交,未作改动)", zero_done: "零报告已提交",
    late_note: "(已过截止时间,记为迟报)", case_done: "病例已上报,预警时限",
    fix_fields: "请按提示修改标红的内容", more_metrics: "更多指标", pick_unit: "请选择单位",
    cough: "咳嗽", sore_throat: "咽痛", headache: "头痛", fatigue: "乏力", muscle_ache: "肌肉酸痛",
    runny_nose: "流涕", diarrhea: "腹泻", rash: "皮疹",
    second_temperature: "复测体温(°C)", travel_risk_area: "近期有风险地区旅居史", contact_with_case: "有确诊或疑似病例接触史",
    action: "处置措施", unknown: "未询问", yes: "是", no: "否",
    action_isolated: "应急隔离", action_referred: "转诊发热门诊", action_sent_home: "家长接回", action_observed: "留观",
    action_other: "其他",
    control: "管控台账", control_title: "管控台账(一人一案)", register: "在管人员",
    tests_due: "今日核酸检测", releases_due: "待解除", signoffs: "包保签字",
    pseudonym: "编号", person_name: "姓名", category: "类别", regime: "管控方式", phase: "阶段",
    place: "地点", start_day: "开始日期", planned_release: "计划解除", record_test: "录入阴性",
    release_now: "解除", sign: "签字", signed: "已签", done: "已完成", overdue_day: "逾期",
    home: "居家", nobody: "暂无", missing_signoffs: "缺签人数",
    phase_central_isolation: "集中隔离", phase_home_isolation: "居家隔离",
    phase_home_health_monitoring: "居家健康监测",
    review: "审核上报", review_title: "审核与确认上报", confirm_panel: "确认上报",
    children_panel: "下级确认情况", units_panel: "报告审核", confirm_button: "确认上报",
    confirm_again: "重新确认上报", confirmed_done: "已确认上报", sent_back_done: "已退回",
    st_confirmed: "已确认", st_unconfirmed: "未确认", st_reopened: "确认后更正,待重新确认",
    st_not_required: "本级无需确认", confirmed_at: "确认时间", confirmed_by: "确认人",
    confirmed_figures: "确认数", live_figures: "当前数(未确认)", live_now: "当前数",
    difference: "差额", due_by: "确认时限", changed_after: "确认后有更正",
    not_reported: "未报", send_back: "退回", send_back_reason: "退回原因",
    sent_back: "已退回", sendback_open: "待更正", sendback_cleared: "已更正",
    revision_short: "版", zero_short: "零报告", late_short: "迟报", no_units: "辖区内没有报告单位",
    sendbacks_title: "被退回的报告", sendback_by: "退回人", correct_this: "更正此报告",
    correction_reason: "更正原因", submit_correction: "提交更正", corrected_done: "已提交更正",
    open_sendbacks: "待更正的退回", name: "名称", status: "状态", figures: "数据",
    roster: "值班表", roster_title: "值班表", add_shift: "新增班次", save: "保存", saved: "已保存",
    person: "人员", role: "职责", starts: "开始", ends: "结束", whole_day: "全天", remove: "删除",
    role_on_duty: "值班", role_leader: "带班领导", role_unit_in_charge: "第一责任人",
    role_unit_reporter: "信息员", role_in_charge: "第一责任人", role_reporter: "信息员",
    no_shifts: "当日尚未排班", roster_hint: "值班人员收到本级预警;升级预警报告带班领导。",
    deliveries: "通知送达", deliveries_unavailable: "通知服务暂不可用,送达情况未知",
    no_deliveries: "尚未通知任何人", details: "详情", alert_history: "预警经过",
    channel_sms: "短信", channel_email: "邮件", channel_wecom: "企业微信", channel_dingtalk: "钉钉",
    channel_none: "无联系方式", d_sent: "已发送", d_delivered: "已送达", d_failed: "发送失败", d_pending: "待发送",
    d_cancelled: "已取消", retrying: "重试中", attempts: "尝试次数", time: "时间", status: "状态",
    change_opened: "发出", change_warned: "临近时限提醒", change_escalated: "升级",
    change_acknowledged: "确认接收", change_closed: "办结", change_resolved: "已补报",
  },
  en: {
    app_title: "Daily Epidemic Reporting — Command Centre",
    console: "Console", report_form: "Unit report", summary: "Daily summary",
    live: "Live", offline: "Reconnecting…", sign_out: "Sign out", lang: "中文",
    sign_in_title: "Operator sign-in", sign_in_hint: "Paste the access token your command centre issued (starts with rc_). It stays in this browser only.",
    token: "Access token", sign_in: "Sign in", day: "Day", today: "Today",
    expected: "Expected", reported: "Reported", zero: "Zero reports", late: "Late", missing: "Missing",
    pending: "Pending", exempt: "Exempt", pending_title: "Pending units", exempt_title: "Exempt units",
    next_cutoff: "Next cutoff", no_cutoff: "No cutoff left today", final_reporting_rate: "Day's rate",
    status_pending: "Pending", status_exempt: "Exempt", cutoff: "cutoff",
    calendar_title: "Calendars (exempt)", declare: "Declare", end_calendar: "End", valid_from: "From",
    valid_to: "To (inclusive)", weekday: "Weekly rest day", every_day: "Every day", scope_node: "Area (and below)",
    scope_unit: "Unit code (this unit only)", all_types: "All types", declared_by: "Declared by",
    weekdays: "MTWTFSS",
    on_time: "On time", reporting_rate: "Reporting rate", on_time_rate: "On-time rate",
    children_title: "Reporting below", units_title: "Units", alerts_title: "Open alerts",
    missing_title: "Missing units", late_title: "Late units", none: "None", all_clear: "Everyone reported on time",
    no_alerts: "No open alerts", acknowledge: "Acknowledge", close_alert: "Close",
    acknowledged: "Acknowledged", open: "Open", closed: "Closed", overdue: "Overdue", left: "left",
    escalated: "Escalated", late_case: "Reported late",
    kind_case: "Case", kind_outbreak: "Outbreak", kind_missing_report: "Missing report", kind_supply_low: "Supplies low", kind_missing_confirmation: "Not confirmed", kind_test_overdue: "Test overdue", kind_release_overdue: "Release overdue", kind_team_signoff_missing: "Team sign-off missing",
    fever: "Fever", ili: "Flu-like illness",
    outcome: "Outcome", note: "Note", isolated: "Isolated", referred: "Referred to fever clinic",
    excluded: "Excluded", other: "Other", submit: "Submit", cancel: "Cancel",
    history: "Report history", revision: "Rev.", submitted_at: "Submitted", reporter: "Reporter",
    reason: "Correction reason", values: "Values", cases: "Cases", no_reports: "No reports yet",
    note: "Note", notes_title: "Units' notes", below_minimum: "Below minimum reserve", note_placeholder: "Anything special to report (no ID-card or phone numbers)",
    status_reported: "Reported", status_zero: "Zero report", status_missing: "Missing", status_late: "Late",
    unit: "Unit", type: "Type", node: "Area", code: "Code", name: "Name",
    print: "Print", download_csv: "Download CSV", summary_title: "Daily epidemic prevention summary",
    download_xlsx: "Download Excel", summary_title_day: "Daily epidemic prevention summary",
    summary_title_week: "Weekly epidemic prevention summary", summary_title_month: "Monthly epidemic prevention summary",
    summary_title_range: "Epidemic prevention summary", doc_notes: "Notes",
    signed_by: "Filled in by", checked_by: "Checked by", signed_at: "Filled in at", seal: "Seal",
    trend: "Trend", trend_title: "Trend and running totals", trend_summary: "Summary of the period",
    this_week: "This week", this_month: "This month", last_30: "Last 30 days", start: "Start", end: "End",
    since: "Running total from", metric: "Metric", show: "Show", period_totals: "Totals of the period",
    daily: "daily", running_total: "Running total", period_total: "Period's total", fold: "Over days",
    measure: "Unit", unit_days: "Unit-days",
    over_days_sum: "summed", over_days_last: "last day's", over_days_max: "highest", over_days_min: "lowest",
    over_days_average: "daily average",
    flow_note: "A flow: the solid line is each day's figure, the dashed one the running total since its start (right axis).",
    stock_note: "A stock (e.g. people under home observation): the period's figure is its last day's, never a sum.",
    generated: "Generated", rollup_table: "Reporting and surveillance by area", day_alerts: "Alerts of the day",
    back: "Back to console", fever_cases: "Fever cases", ili_cases: "Flu-like cases",
    updated: "Updated", by: "By", started: "Found/started", deadline: "Deadline",
    new_alert: "New alert", whole_area: "Whole area", drill_hint: "Click an area to drill down",
    unit_history: "Unit report history", close: "Close", escalations: "Escalations",
    form_title: "Daily unit report", form_sign_in: "Reporter sign-in",
    form_sign_in_hint: "Paste your unit's reporting token (starts with rc_), issued by the town or county command centre.",
    unit_search: "Unit name or code", reporter_hint: "Your name", daily_report: "Today's report",
    daily_hint: "Nothing to report? One click sends the zero report. Otherwise fill in and submit.",
    zero_button: "✓ All clear today: send zero report", submit_report: "Submit report",
    case_title: "Fever or flu-like case found (report within two hours)", case_kind: "Kind", found_at: "Found at",
    temperature: "Temperature (°C)", person_ref: "Person reference (no names)", symptoms: "Symptoms", submit_case: "Report case",
    accepted: "Accepted", duplicate: "Already received (a retry, nothing changed)", zero_done: "Zero report sent",
    late_note: " (after the cutoff: counted as late)", case_done: "Case reported; alert deadline",
    fix_fields: "Please correct the fields marked in red", more_metrics: "More metrics", pick_unit: "Choose a unit",
    cough: "Cough", sore_throat: "Sore throat", headache: "Headache", fatigue: "Fatigue", muscle_ache: "Muscle ache",
    runny_nose: "Runny nose", diarrhea: "Diarrhoea", rash: "Rash",
    second_temperature: "Second reading (°C)", travel_risk_area: "Recently in a risk area", contact_with_case: "Contact with a confirmed or suspected case",
    action: "Action taken", unknown: "Not asked", yes: "Yes", no: "No",
    action_isolated: "Isolated on site", action_referred: "Referred to a fever clinic", action_sent_home: "Sent home with a parent",
    action_observed: "Kept for observation", action_other: "Other",
    control: "People under control", control_title: "People under control (一人一案)",
    register: "Under control", tests_due: "Tests due today", releases_due: "Releases due",
    signoffs: "Team sign-off", pseudonym: "Ref.", person_name: "Name", category: "Category",
    regime: "Regime", phase: "Phase", place: "Place", start_day: "Start",
    planned_release: "Planned release", record_test: "Record negative", release_now: "Release",
    sign: "Sign", signed: "Signed", done: "Done", overdue_day: "Overdue", home: "Home",
    nobody: "Nobody", missing_signoffs: "Missing sign-offs",
    phase_central_isolation: "Central isolation", phase_home_isolation: "Home isolation",
    phase_home_health_monitoring: "Home health monitoring",
    review: "Review", review_title: "Review and confirm", confirm_panel: "Confirm the day",
    children_panel: "Below: confirmations", units_panel: "Reports to review", confirm_button: "Confirm the day",
    confirm_again: "Confirm again", confirmed_done: "Day confirmed", sent_back_done: "Sent back",
    st_confirmed: "Confirmed", st_unconfirmed: "Unconfirmed", st_reopened: "Changed after confirmation: confirm again",
    st_not_required: "Not confirmed at this level", confirmed_at: "Confirmed at", confirmed_by: "By",
    confirmed_figures: "Confirmed", live_figures: "Live (unconfirmed)", live_now: "Live",
    difference: "Difference", due_by: "Due by", changed_after: "Changed after confirmation",
    not_reported: "Not reported", send_back: "Send back", send_back_reason: "Reason",
    sent_back: "Sent back", sendback_open: "Awaiting correction", sendback_cleared: "Corrected",
    revision_short: "rev.", zero_short: "zero report", late_short: "late", no_units: "No reporting units here",
    sendbacks_title: "Reports sent back", sendback_by: "Sent back by", correct_this: "Correct this report",
    correction_reason: "Reason for the correction", submit_correction: "Send correction", corrected_done: "Correction sent",
    open_sendbacks: "Sent back, not corrected", name: "Name", status: "Status", figures: "Figures",
    roster: "Duty roster", roster_title: "Duty roster", add_shift: "Add shift", save: "Save", saved: "Saved",
    person: "Person", role: "Role", starts: "From", ends: "To", whole_day: "All day", remove: "Remove",
    role_on_duty: "On duty", role_leader: "Duty leader", role_unit_in_charge: "In charge",
    role_unit_reporter: "Reporting officer", role_in_charge: "In charge", role_reporter: "Reporting officer",
    no_shifts: "Nobody on the roster for this day", roster_hint: "Whoever is on duty hears of this level's alerts; escalations go to the duty leader.",
    deliveries: "Notifications", deliveries_unavailable: "Notification service unavailable: delivery state unknown",
    no_deliveries: "Nobody told yet", details: "Details", alert_history: "Alert history",
    channel_sms: "SMS", channel_email: "E-mail", channel_wecom: "WeCom", channel_dingtalk: "DingTalk",
    channel_none: "No channel", d_sent: "sent", d_delivered: "delivered", d_failed: "failed", d_pending: "pending",
    d_cancelled: "cancelled", retrying: "retrying", attempts: "Attempts", time: "Time", status: "Status",
    change_opened: "Opened", change_warned: "Warned", change_escalated: "Escalated",
    change_acknowledged: "Acknowledged", change_closed: "Closed", change_resolved: "Resolved",
  },
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
  return (I18N[LANG] && I18N[LANG][key]) || I18N.zh[key] || key;
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
