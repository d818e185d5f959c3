"""The words of a notification: what happened, where, and by when someone must act. Plain
text, short enough for an SMS, in the deployment's time zone. Addresses never appear here."""

from collections.abc import Mapping
from datetime import date, time
from zoneinfo import ZoneInfo

from shared.contracts import (
    AlertEscalated,
    AlertEvent,
    AlertOpened,
    AlertWarned,
    EditionPublished,
)

KIND_NAMES = {"case": "发热病例预警", "outbreak": "流感样病例暴发预警",
              "missing_report": "漏报预警", "supply_low": "物资储备不足预警",
              "missing_confirmation": "未确认上报预警",
              "test_overdue": "管控人员核酸检测逾期", "release_overdue": "管控人员解除逾期",
              "team_signoff_missing": "包保签字缺失"}
CASE_NAMES = {"fever": "发热病例", "ili": "流感样病例"}


def render(event: AlertEvent, names: Mapping[str, str], zone: ZoneInfo) -> tuple[str, str]:
    """(title, body) of the message about one alert change; `names` maps node and unit codes
    to their names (a code stands for itself when it has none)."""
    kind = KIND_NAMES.get(event.kind, event.kind)
    place = names.get(event.node, event.node)
    if event.unit:
        place += " " + names.get(event.unit, event.unit)
    deadline = event.deadline.astimezone(zone).strftime("%m-%d %H:%M")
    if isinstance(event, AlertOpened):
        what = CASE_NAMES.get(event.case_kind or "", kind)
        head = f"【{kind}】{place} 发现{what}"
        action = f"请于 {deadline} 前确认处置" + ("(已迟报)" if event.late else "")
    elif isinstance(event, AlertWarned):
        head = f"【{kind}·即将超时】{place}"
        action = f"距处置时限 {deadline} 还有 {event.minutes_left} 分钟,尚无人确认"
    elif isinstance(event, AlertEscalated):
        responsible = names.get(event.responsible, event.responsible)
        head = f"【{kind}·已升级】{place}"
        action = f"时限 {deadline} 已过仍未确认,已升级至{responsible},请带班领导立即处置"
    else:
        head = f"【{kind}】{place}"
        action = f"状态:{event.status}"
    at = event.at.astimezone(zone).strftime("%H:%M")
    return head, f"{head}。{action}。({at},预警 {str(event.alert_id)[:8]})"


DIGEST_UNITS_MAX = 30  # an SMS stays readable; the console lists them all


def render_digest(node_name: str, day: str, cutoff: str, items: list[dict]) -> tuple[str, str]:
    """(title, body) of a missing-report digest: the units of one node's subtree that had not
    reported at a cutoff, by village, in the order the alerts came."""
    count = sum(len(item["units"]) for item in items)
    title = f"【漏报】{node_name} {day} {cutoff} 截止仍有 {count} 个单位未报"
    lines, shown = [], 0
    for item in items:
        units = item["units"][: max(DIGEST_UNITS_MAX - shown, 0)]
        shown += len(units)
        if units:
            lines.append(f"{item['node_name']}:{'、'.join(units)}")
    more = f"\n另有 {count - shown} 个单位未列出" if count > shown else ""
    return title, title + "。\n" + "\n".join(lines) + more


def render_reminder(unit_name: str, day: date, cutoff: time) -> tuple[str, str]:
    """(title, body) of the reminder to a unit that has not reported yet."""
    title = f"【报送提醒】{unit_name} {day:%m-%d} 日报尚未报送"
    return title, (f"{title},请于 {cutoff:%H:%M} 前报送;无异常情况请报零报告。")


def _size(size: int) -> str:
    return f"{max(round(size / 1024), 1)} KB" if size < 1024 * 1024 else \
        f"{size / 1024 / 1024:.1f} MB"


def render_edition(event: EditionPublished, node_name: str, console_url: str | None
                   ) -> tuple[str, str]:
    """(title, body) of the message that a node's scheduled edition is out: which, and where
    to download the workbook (the console's address and the event's path; only the path when
    the deployment has not said where the console is). The link asks for an operator's
    sign-in: the workbook itself is never sent."""
    title = f"【定时日报】{node_name} {event.day:%m-%d} {event.scheduled:%H:%M} 版已生成"
    link = (console_url.rstrip("/") if console_url else "") + event.download
    where = "下载" if console_url else "控制台下载路径"
    return title, (f"{title}:{event.title}(报告日 {event.day.isoformat()},工作簿 "
                   f"{_size(event.size)})。{where}:{link}")
