"""The generic spreadsheet template: a sheet of tables in, an .xlsx out, read back with
openpyxl: title, captions, headers, typed cells, the bold total, an empty table, the notes and
signature lines, column widths and the A4 landscape page setup."""

import io

from openpyxl import load_workbook

from shared.workbook import Column, Sheet, Table, workbook


def test_a_sheet_of_tables_prints_like_the_paper_template() -> None:
    sheet = Sheet(
        name="周通报: 第10周/2026", title="岳阳县疫情防控周通报", subtitle="2026年3月2日至3月8日",
        tables=[Table("一、各乡镇报送情况", [Column("乡镇", 16), Column("应报", 8, "integer"),
                                    Column("报告率", 9, "percent")],
                      [["荣家湾镇", 90, 0.9], ["合计", 90, 0.9]], emphasised=frozenset({1})),
                Table("二、漏报单位", [Column("单位", 30)], [])],
        notes="无特殊情况", signed={"填报人": "李明"})
    ws = load_workbook(io.BytesIO(workbook([sheet]))).worksheets[0]
    assert ws.title == "周通报_ 第10周_2026"
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[0][0] == "岳阳县疫情防控周通报" and rows[1][0] == "2026年3月2日至3月8日"
    assert rows[3][0] == "一、各乡镇报送情况" and rows[4][:3] == ["乡镇", "应报", "报告率"]
    assert rows[5][:3] == ["荣家湾镇", 90, 0.9]
    assert ws.cell(row=6, column=3).number_format == "0.0%"
    assert not ws.cell(row=6, column=1).font.b and ws.cell(row=7, column=1).font.b  # 合计
    assert rows[8][0] == "二、漏报单位" and rows[10][0] == "无"
    assert rows[-3][0] == "备注：无特殊情况"
    assert [v for v in rows[-1] if v] == ["填报人：李明", "审核人：", "填报时间：", "盖章："]
    assert ws.column_dimensions["A"].width == 30  # the widest column in that place
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.print_title_rows == "$1:$5"
    assert "A1:H1" in {str(r) for r in ws.merged_cells.ranges}  # the title across the width
