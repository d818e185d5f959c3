"""The daily summary (日报/通报) of a node and day, or of a week, a month or any range: the rollup
of the node and of each child, the completeness figures with the missing, pending, exempt and
late units (pending and missing as of the moment it is made; a single day only), and the
period's alerts, as one document for the printable page, as a CSV file that opens in a
spreadsheet (UTF-8 with a BOM, which Excel needs to read Chinese) and as an XLSX workbook laid
out like a command centre's template (`shared/workbook.py`)."""

import csv
import io
from collections.abc import Iterable
from datetime import date

from shared.catalogue import Catalogue
from shared.periods import describe_zh
from shared.workbook import Column, Sheet, Table, workbook

COMPLETENESS = (("expected", "应报单位", "Expected"), ("reported", "已报", "Reported"),
                ("zero", "零报告", "Zero reports"), ("late", "迟报", "Late"),
                ("missing", "漏报", "Missing"), ("pending", "待报", "Pending"),
                ("exempt", "免报", "Exempt"))
ALERT_KIND = {"case": "发热/流感样病例 Case", "outbreak": "聚集性疫情 Outbreak",
              "missing_report": "漏报 Missing report"}
ALERT_STATUS = {"open": "待处置 Open", "acknowledged": "已确认 Acknowledged",
                "closed": "已办结 Closed"}


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


# Stated in every summary, reported or not: the two figures the two-hour rule is about.
ALWAYS = ("fever", "ili")


KIND_TITLE = {"day": "疫情防控日报", "week": "疫情防控周报", "month": "疫情防控月报",
              "range": "疫情防控汇总表"}


def build(node_view: dict, children: list[dict], alerts: list[dict], catalogue: Catalogue,
          generated_at: str, notes: list[dict] = (), period: str | None = None) -> dict:
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
    start = str(node_view.get("start") or node_view.get("day"))
    end = str(node_view.get("end") or node_view.get("day"))
    return {
        "node": node_view.get("node"), "name": node_view.get("name"),
        "day": str(node_view.get("day") or ""), "start": start, "end": end,
        "period": period or ("day" if start == end else "range"),
        "generated_at": generated_at,
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


# ---- the workbook (XLSX) -----------------------------------------------------------------

COUNT_COLUMNS = (("expected", "应报单位数"), ("reported", "已报"), ("zero", "零报告"),
                 ("late", "迟报"), ("missing", "漏报"), ("pending", "待报"), ("exempt", "免报"))
UNIT_STATUS = {"reported": "已报", "zero": "零报告", "pending": "待报", "missing": "漏报",
               "exempt": "免报"}


def title_of(doc: dict) -> str:
    return f"{doc['name'] or doc['node']}{KIND_TITLE.get(doc['period'], KIND_TITLE['range'])}"


def _span_zh(doc: dict) -> str:
    return describe_zh(date.fromisoformat(doc["start"]), date.fromisoformat(doc["end"]))


def to_workbook(doc: dict, signed: dict[str, str] | None = None) -> bytes:
    """The summary as a command centre's template: title, the table of children with the
    合计 row (the node's own figures, as the API gives them), the lists, the alerts, the notes
    line and the signature lines. Over several days the counts are unit-days and the lists of
    units are left to each day's summary."""
    single = doc["start"] == doc["end"]
    metrics = doc["metrics"]
    columns = [Column("区划代码", 14), Column("名称", 16),
               *(Column(zh, 8, "integer") for _, zh in COUNT_COLUMNS),
               Column("报告率", 9, "percent"), Column("及时率", 9, "percent"),
               *(Column(f"{m['name_zh']}（{m['measure_zh']}）", 11, "number") for m in metrics)]

    def line(row: dict) -> list:
        return [row["node"], ("合计" if row["total"] else row["name"] or ""),
                *(row[key] for key, _ in COUNT_COLUMNS),
                row["reporting_rate"], row["on_time_rate"],
                *(row["values"].get(m["code"], 0) for m in metrics)]

    children = [line(r) for r in doc["rows"] if not r["total"]]
    total = line(doc["rows"][0])
    unit_days = "" if single else "（单位·日）"
    tables = [Table(f"一、各地汇总{unit_days}", columns, [*children, total],
                    emphasised=frozenset({len(children)}))]
    if doc["own_units"]:
        tables.append(Table(f"直属单位（{len(doc['own_units'])}）", [
            Column("单位代码", 18), Column("单位名称", 24), Column("类型", 14), Column("状态", 8),
            *(Column(f"{m['name_zh']}（{m['measure_zh']}）", 11, "number") for m in metrics)],
            [[u.get("unit"), u.get("name"), u.get("unit_type"),
              UNIT_STATUS.get(u.get("status"), u.get("status")),
              *(u["values"].get(m["code"]) for m in metrics)] for u in doc["own_units"]]))
    unit_columns = [Column("单位代码", 18), Column("单位名称", 24), Column("所属区划", 14),
                    Column("类型", 14)]
    if single:
        for title, key, extra in (("二、漏报单位", "missing_units", None),
                                  ("三、迟报单位", "late_units", ("报送时间", "submitted_at")),
                                  ("待报单位", "pending_units", ("截止时间", "cutoff")),
                                  ("免报单位", "exempt_units", ("免报原因", "reason"))):
            units = doc[key]
            if not units and key in ("pending_units", "exempt_units"):
                continue
            cols = unit_columns + ([Column(extra[0], 18)] if extra else [])
            tables.append(Table(f"{title}（{len(units)}）", cols, [
                [u.get("unit"), u.get("name"), u.get("node"), u.get("unit_type"),
                 *([u.get(extra[1])] if extra else [])] for u in units]))
    low = [(row, s) for row in doc["rows"] for s in row.get("below_minimum", [])]
    if low:
        tables.append(Table(f"低于最低储备（{len(low)}）", [
            Column("区划代码", 14), Column("名称", 16), Column("预警", 24),
            Column("当前", 10, "number"), Column("最低", 10, "number")],
            [[row["node"], row["name"] or "", s["name_zh"], s["value"], s["minimum"]]
             for row, s in low]))
    tables.append(Table(f"{'四、' if single else '二、'}预警情况（{len(doc['alerts'])}）", [
        Column("类型", 16), Column("状态", 10), Column("单位", 24), Column("区划", 16),
        Column("开始时间", 18), Column("处置时限", 18), Column("超时", 6),
        Column("确认人", 10), Column("处置结果", 14)],
        [[ALERT_KIND.get(a.get("kind"), a.get("kind")),
          ALERT_STATUS.get(a.get("status"), a.get("status")),
          " ".join(filter(None, (a.get("unit"), a.get("unit_name")))),
          " ".join(filter(None, (a.get("node"), a.get("node_name")))),
          a.get("started_at"), a.get("deadline"), "是" if a.get("overdue") else "",
          a.get("acknowledged_by") or "", a.get("outcome") or ""] for a in doc["alerts"]]))
    if doc["notes"]:
        tables.append(Table(f"单位备注（{len(doc['notes'])}）", [
            Column("单位代码", 18), Column("单位名称", 24), Column("所属区划", 14),
            Column("版本", 6, "integer"), Column("备注", 40)],
            [[n.get("unit"), n.get("unit_name") or "", n.get("node"), n.get("revision"),
              n.get("note")] for n in doc["notes"]]))
    sheet = Sheet(name=title_of(doc), title=title_of(doc),
                  subtitle=f"区划代码：{doc['node']}　　统计时间：{_span_zh(doc)}"
                           f"　　生成时间：{doc['generated_at']}",
                  tables=tables, signed=signed or {})
    return workbook([sheet])
