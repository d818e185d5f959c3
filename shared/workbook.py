"""Spreadsheets laid out like a command centre's paper template: a title, a line saying what and
when, one or more tables each under its caption, a notes line (备注) and the signature lines at
the foot (填报人 / 审核人 / 填报时间 / 盖章), set up to print on A4 landscape.

Generic on purpose: a `Sheet` of `Table`s in, the bytes of an .xlsx workbook out. The daily,
weekly and range summaries and the weekly 通报 each describe their tables; none of them touches
openpyxl. Values stay numbers in their cells (a rate is 0.8 shown as 80.0%), so a command
centre can add them up again."""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

Format = Literal["text", "integer", "number", "percent"]
NUMBER_FORMATS: dict[str, str] = {"text": "@", "integer": "0", "number": "0.###",
                                  "percent": "0.0%"}
# The lines a paper template is signed on, in the order they are filled.
SIGNATURES = ("填报人", "审核人", "填报时间", "盖章")
FONT = "宋体"  # what a Chinese office's templates are set in; Excel substitutes if it lacks it


@dataclass(frozen=True)
class Column:
    title: str
    width: float = 10  # in characters of the default font; a Chinese character takes about 2
    format: Format = "text"


@dataclass(frozen=True)
class Table:
    caption: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    emphasised: frozenset[int] = frozenset()  # rows in bold (the 合计 row)
    empty: str = "无"  # what a table without rows says under its header


@dataclass(frozen=True)
class Sheet:
    name: str  # the tab's name: at most 31 characters, none of []:*?/\
    title: str
    subtitle: str = ""
    tables: Sequence[Table] = ()
    notes: str = ""  # after 备注：, left empty for a pen
    signatures: Sequence[str] = SIGNATURES
    signed: dict[str, str] = field(default_factory=dict)  # a signature line already filled


THIN = Side(style="thin", color="000000")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEADER_FILL = PatternFill("solid", fgColor="D9D9D9")
WRAP = Alignment(wrap_text=True, vertical="center")
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)


def workbook(sheets: Sequence[Sheet]) -> bytes:
    """The .xlsx file of these sheets, one tab each."""
    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        _fill(book.create_sheet(_tab_name(sheet.name)), sheet)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _tab_name(name: str) -> str:
    return "".join("_" if c in "[]:*?/\\" else c for c in name)[:31] or "Sheet"


def _fill(ws: Worksheet, sheet: Sheet) -> None:
    width = max([len(t.columns) for t in sheet.tables] + [len(sheet.signatures) * 2, 4])
    row = 1
    row = _line(ws, row, width, sheet.title, Font(name=FONT, size=16, bold=True), 30, CENTRE)
    if sheet.subtitle:
        row = _line(ws, row, width, sheet.subtitle, Font(name=FONT, size=10), 18,
                    Alignment(horizontal="left", vertical="center"))
    header_rows: list[int] = []
    for table in sheet.tables:
        row += 1
        row = _line(ws, row, width, table.caption, Font(name=FONT, size=11, bold=True), 20,
                    Alignment(horizontal="left", vertical="center"))
        header_rows.append(row)
        row = _table(ws, row, table)
    row += 1
    row = _line(ws, row, width, f"备注：{sheet.notes}", Font(name=FONT, size=11), 36,
                Alignment(horizontal="left", vertical="top", wrap_text=True))
    row += 1
    _signatures(ws, row, width, sheet)
    _widths(ws, sheet.tables, width)
    _page_setup(ws, header_rows[0] if header_rows else None)


def _line(ws: Worksheet, row: int, width: int, text: str, font: Font, height: float,
          align: Alignment) -> int:
    """One line of text across the sheet's width; the next free row."""
    cell = ws.cell(row=row, column=1, value=text)
    cell.font, cell.alignment = font, align
    if width > 1:
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    ws.row_dimensions[row].height = height
    return row + 1


def _table(ws: Worksheet, row: int, table: Table) -> int:
    for col, column in enumerate(table.columns, 1):
        cell = ws.cell(row=row, column=col, value=column.title)
        cell.font, cell.fill = Font(name=FONT, size=10, bold=True), HEADER_FILL
        cell.border, cell.alignment = BOX, CENTRE
    ws.row_dimensions[row].height = 30
    row += 1
    if not table.rows:
        cell = ws.cell(row=row, column=1, value=table.empty)
        cell.font, cell.border = Font(name=FONT, size=10), BOX
        return row + 1
    for index, values in enumerate(table.rows):
        bold = index in table.emphasised
        for col, column in enumerate(table.columns, 1):
            value = values[col - 1] if col - 1 < len(values) else None
            cell = ws.cell(row=row, column=col, value=_cell_value(value, column.format))
            cell.font, cell.border = Font(name=FONT, size=10, bold=bold), BOX
            cell.alignment = WRAP
            if value is not None and value != "":
                cell.number_format = NUMBER_FORMATS[column.format]
        row += 1
    return row


def _cell_value(value: Any, fmt: Format) -> Any:
    if value is None:
        return None
    if fmt == "text":
        return str(value)
    return value


def _signatures(ws: Worksheet, row: int, width: int, sheet: Sheet) -> None:
    """The signature lines side by side, each over an equal share of the width."""
    labels = list(sheet.signatures)
    if not labels:
        return
    share = max(width // len(labels), 1)
    for i, label in enumerate(labels):
        first = 1 + i * share
        last = width if i == len(labels) - 1 else first + share - 1
        cell = ws.cell(row=row, column=first, value=f"{label}：{sheet.signed.get(label, '')}")
        cell.font = Font(name=FONT, size=11)
        cell.alignment = Alignment(horizontal="left", vertical="bottom")
        if last > first:
            ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)
    ws.row_dimensions[row].height = 36


def _widths(ws: Worksheet, tables: Sequence[Table], width: int) -> None:
    """Each column as wide as the widest of the tables' columns in that place."""
    for col in range(1, width + 1):
        widths = [t.columns[col - 1].width for t in tables if col <= len(t.columns)]
        ws.column_dimensions[get_column_letter(col)].width = max(widths or [10])


def _page_setup(ws: Worksheet, first_header: int | None) -> None:
    """A4 landscape, every column on one page's width (as many pages down as it takes), the
    title and the first table's header again on every page, and page numbers at the foot."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top, ws.page_margins.bottom = 0.5, 0.6
    if first_header is not None:
        ws.print_title_rows = f"1:{first_header}" if first_header <= 6 else "1:1"
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
