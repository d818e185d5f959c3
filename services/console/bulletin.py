"""The weekly 通报 of a node (一天一通報, 追究漏报、迟报、瞒报的责任): over a range of days, the
node's tallies, the child nodes with the lowest reporting rates, the units with the most missing
and late days, and the 疑似瞒报 flags, as one document for the page and as a CSV file (UTF-8
with a BOM, for Excel). The tallies are aggregate's (`/v1/accountability`), the flags alerts';
and the send-backs (退回) signoff's; nothing here counts but how many send-backs."""

import csv
import io

from services.console.summary import percent, sector_name

UNITS_NAMED = 30  # the units a 通报 names: those with missing or late days, the worst first
TALLY = (("expected", "应报单位日", "Expected unit-days"), ("reported", "已报", "Reported"),
         ("zero", "零报告", "Zero reports"), ("late", "迟报", "Late"),
         ("missing", "漏报", "Missing"), ("corrected", "更正", "Corrected"),
         ("sent_back", "退回", "Sent back"))
FLAG_KIND = {"zero_with_case": "零报告但当日有病例 Zero report on a day with a case",
             "identical_values": "数据连续多日完全相同 Identical values day after day"}
FLAG_STATUS = {"open": "待核实 Open", "dismissed": "已排除 Dismissed"}


def count_sendbacks(tallies: dict, sendbacks: list[dict] | None) -> None:
    """退回: how many of each unit's (and each child's, and the node's) reports of the range
    were sent back, from signoff's send-backs; left null when signoff did not answer."""
    if sendbacks is None:
        return
    per_unit: dict[str, int] = {}
    for s in sendbacks:
        per_unit[s["unit"]] = per_unit.get(s["unit"], 0) + 1
    for u in tallies["units"]:
        u["sent_back"] = per_unit.get(u["unit"], 0)
    for c in tallies["children"]:
        c["sent_back"] = sum(n for s_unit, n in per_unit.items()
                             if any(u["unit"] == s_unit and u["node"].startswith(c["node"])
                                    for u in tallies["units"]))
    tallies["totals"]["sent_back"] = sum(per_unit.values())


def build(tallies: dict, flags: list[dict], flag_counts: dict, generated_at: str,
          sendbacks: list[dict] | None = None) -> dict:
    """The 通报 as one document: every child node ranked (the lowest rate first), the units
    with missing or late days ranked (at most UNITS_NAMED), then any other unit with an open
    flag, each with its open flags and how many of its reports were sent back."""
    count_sendbacks(tallies, sendbacks)
    open_flags = flag_counts.get("open_by_unit", {})
    worst = [u for u in tallies["units"] if u["missing"] or u["late"]][:UNITS_NAMED]
    flagged = [u for u in tallies["units"] if open_flags.get(u["unit"]) and u not in worst]
    named = [{**u, "flags": open_flags.get(u["unit"], 0)} for u in worst + flagged]
    return {"node": tallies["node"], "name": tallies["name"], "start": tallies["start"],
            "end": tallies["end"], "days": tallies["days"], "generated_at": generated_at,
            **sector_name((tallies.get("filter") or {}).get("sector")),
            "totals": tallies["totals"], "units_total": tallies["units_total"],
            "children": tallies["children"], "units": named, "flags": flags,
            "flag_counts": flag_counts}


def to_csv(doc: dict) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([f"疫情防控报送通报 Reporting bulletin: {doc['name']} ({doc['node']})",
                f"{doc['start']} – {doc['end']}", doc.get("sector") or ""])
    w.writerow(["生成时间 Generated", doc["generated_at"]])
    w.writerow([])
    head = [f"{zh} {en}" for _, zh, en in TALLY] + ["报告率 Reporting rate", "及时率 On-time rate"]

    def figures(row: dict) -> list:
        return [("" if row.get(k) is None else row.get(k)) for k, _, _ in TALLY] + [
            percent(row.get("reporting_rate")), percent(row.get("on_time_rate"))]

    w.writerow(["合计 Total", *head])
    w.writerow([doc["name"] or doc["node"], *figures(doc["totals"])])
    w.writerow([])
    w.writerow([f"报告率最低的下级 Lowest reporting rates ({len(doc['children'])})"])
    w.writerow(["名次 Rank", "区划代码 Code", "名称 Name", *head])
    for c in doc["children"]:
        w.writerow([c["rank"], c["node"], c["name"] or "", *figures(c)])
    w.writerow([])
    w.writerow([f"漏报、迟报最多的单位 Most missing and late days ({len(doc['units'])})"])
    w.writerow(["名次 Rank", "单位代码 Unit", "名称 Name", "所属区划 Node", "类型 Type", *head,
                "疑似瞒报 Flags"])
    for u in doc["units"]:
        w.writerow([u["rank"], u["unit"], u["name"] or "", u["node"], u["unit_type"],
                    *figures(u), u["flags"]])
    w.writerow([])
    w.writerow([f"疑似瞒报 Flags ({len(doc['flags'])})"])
    w.writerow(["日期 Day", "单位代码 Unit", "名称 Name", "类型 Kind", "状态 Status",
                "排除人 Dismissed by", "排除理由 Reason"])
    for f in doc["flags"]:
        w.writerow([f["day"], f["unit"], f.get("unit_name") or "",
                    FLAG_KIND.get(f["kind"], f["kind"]), FLAG_STATUS.get(f["status"], f["status"]),
                    f.get("dismissed_by") or "", f.get("dismissal_reason") or ""])
    return ("\ufeff" + out.getvalue()).encode()
