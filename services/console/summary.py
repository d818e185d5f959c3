"""The daily summary (日报/通报) of a node and day: the rollup of the node and of each child, the
completeness figures with the missing, pending, exempt and late units (pending and missing as of
the moment it is made), and the day's alerts, as one document for
the printable page and as a CSV file that opens in a spreadsheet (UTF-8 with a BOM, which Excel
needs to read Chinese)."""

import csv
import io
from collections.abc import Iterable

from shared.catalogue import Catalogue
from shared.registry.unit_types import sectors

COMPLETENESS = (("expected", "应报单位", "Expected"), ("reported", "已报", "Reported"),
                ("zero", "零报告", "Zero reports"), ("late", "迟报", "Late"),
                ("missing", "漏报", "Missing"), ("pending", "待报", "Pending"),
                ("exempt", "免报", "Exempt"))
ALERT_KIND = {"case": "发热/流感样病例 Case", "outbreak": "聚集性疫情 Outbreak",
              "missing_report": "漏报 Missing report"}
ALERT_STATUS = {"open": "待处置 Open", "acknowledged": "已确认 Acknowledged",
                "closed": "已办结 Closed"}


def sector_name(code: str | None) -> dict:
    """The sector a document is limited to, with its names (none: every sector)."""
    line = sectors().get(code) if code else None
    return {"sector": code,
            "sector_name": {"zh": line.name_zh, "en": line.name_en} if line else None}


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


# Stated in every summary, reported or not: the two figures the two-hour rule is about.
ALWAYS = ("fever", "ili")


def build(node_view: dict, children: list[dict], alerts: list[dict], catalogue: Catalogue,
          generated_at: str, notes: list[dict] = ()) -> dict:
    """The summary as one document: what the printable page shows and the CSV holds. Its
    columns are the metrics reported anywhere in it (a county's summary is not forty empty
    columns), each value typed as the catalogue declares it; the units' notes of the day are
    listed as they were written, never counted."""
    rows = [_row(node_view, catalogue, total=True)]
    rows += [_row(child, catalogue) for child in children if child.get("kind") == "node"]
    own_units = [{**c, "values": catalogue.typed(c.get("values") or {})}
                 for c in children if c.get("kind") == "unit"]
    reported = {code for row in rows for code, value in row["values"].items() if value}
    comp = node_view.get("completeness", {})
    return {
        "node": node_view.get("node"), "name": node_view.get("name"),
        "day": str(node_view.get("day")), "generated_at": generated_at,
        # A sector operator's summary is its sector's (aggregate limited every figure to it).
        **sector_name((node_view.get("filter") or {}).get("sector")),
        "metrics": [{"code": m.code, "name_zh": m.name_zh, "name_en": m.name_en,
                     "measure_zh": m.measure_zh, "measure_en": m.measure_en}
                    for m in catalogue.metrics.values() if m.code in reported or m.code in ALWAYS],
        "rows": rows, "own_units": own_units,
        "missing_units": comp.get("missing_units", []),
        "pending_units": comp.get("pending_units", []),
        "exempt_units": comp.get("exempt_units", []),
        "late_units": comp.get("late_units", []),
        "alerts": alerts,
        "alert_counts": _count_alerts(alerts),
        "notes": list(notes),
    }


def _row(view: dict, catalogue: Catalogue, total: bool = False) -> dict:
    comp = view.get("completeness", {})
    return {"node": view.get("node"), "name": view.get("name"), "total": total,
            **{key: comp.get(key, 0) for key, _, _ in COMPLETENESS},
            "reporting_rate": comp.get("reporting_rate"), "on_time_rate": comp.get("on_time_rate"),
            "values": catalogue.typed(view.get("values", {})),
            "below_minimum": view.get("below_minimum", [])}


def _count_alerts(alerts: Iterable[dict]) -> dict:
    counts = {"total": 0, "open": 0, "acknowledged": 0, "closed": 0, "overdue": 0}
    for alert in alerts:
        counts["total"] += 1
        counts[alert.get("status", "open")] = counts.get(alert.get("status", "open"), 0) + 1
        counts["overdue"] += bool(alert.get("overdue"))
    return counts


def to_csv(doc: dict) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([f"疫情防控日报 Daily summary: {doc['name']} ({doc['node']})", doc["day"]])
    w.writerow(["生成时间 Generated", doc["generated_at"]])
    w.writerow([])
    metrics = doc["metrics"]
    w.writerow(["区划代码 Code", "名称 Name",
                *(f"{zh} {en}" for _, zh, en in COMPLETENESS),
                "报告率 Reporting rate", "及时率 On-time rate",
                *(f"{m['name_zh']} {m['name_en']} ({m['measure_zh']})" for m in metrics)])
    for row in doc["rows"]:
        w.writerow([row["node"], ("合计 " if row["total"] else "") + (row["name"] or ""),
                    *(row[key] for key, _, _ in COMPLETENESS),
                    percent(row["reporting_rate"]), percent(row["on_time_rate"]),
                    *(_number(row["values"].get(m["code"], 0)) for m in metrics)])
    for title, units in (("漏报单位 Missing units", doc["missing_units"]),
                         ("待报单位 Pending units", doc["pending_units"]),
                         ("免报单位 Exempt units", doc["exempt_units"]),
                         ("迟报单位 Late units", doc["late_units"])):
        w.writerow([])
        w.writerow([f"{title} ({len(units)})"])
        w.writerow(["单位代码 Unit", "名称 Name", "所属区划 Node", "类型 Type",
                    "报送时间/截止/免报原因 Submitted/cutoff/reason"])
        for u in units:
            w.writerow([u.get("unit"), u.get("name"), u.get("node"), u.get("unit_type"),
                        u.get("submitted_at") or u.get("cutoff") or u.get("reason") or ""])
    low = [(row, s) for row in doc["rows"] for s in row.get("below_minimum", [])]
    w.writerow([])
    w.writerow([f"低于最低储备 Below minimum reserve ({len(low)})"])
    w.writerow(["区划代码 Code", "名称 Name", "预警 Warning", "当前 Figure", "最低 Minimum"])
    for row, s in low:
        w.writerow([row["node"], row["name"] or "", f"{s['name_zh']} {s['name_en']}",
                    _number(s["value"]), _number(s["minimum"])])
    w.writerow([])
    w.writerow([f"单位备注 Notes ({len(doc['notes'])})"])
    w.writerow(["单位代码 Unit", "名称 Name", "所属区划 Node", "版本 Revision", "备注 Note"])
    for n in doc["notes"]:
        w.writerow([n.get("unit"), n.get("unit_name") or "", n.get("node"), n.get("revision"),
                    n.get("note")])
    w.writerow([])
    w.writerow([f"当日预警 Alerts ({len(doc['alerts'])})"])
    w.writerow(["类型 Kind", "状态 Status", "单位 Unit", "区划 Node", "开始 Started",
                "时限 Deadline", "超时 Overdue", "升级次数 Escalations", "确认人 Acknowledged by",
                "处置结果 Outcome", "说明 Note"])
    for a in doc["alerts"]:
        w.writerow([ALERT_KIND.get(a.get("kind"), a.get("kind")),
                    ALERT_STATUS.get(a.get("status"), a.get("status")),
                    " ".join(filter(None, (a.get("unit"), a.get("unit_name")))),
                    " ".join(filter(None, (a.get("node"), a.get("node_name")))),
                    a.get("started_at"), a.get("deadline"),
                    "是 yes" if a.get("overdue") else "", a.get("escalations", 0),
                    a.get("acknowledged_by") or "", a.get("outcome") or "", a.get("note") or ""])
    return ("\ufeff" + out.getvalue()).encode()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
