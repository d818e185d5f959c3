"""Daily reports as a CSV file, one report a row: pure parsing, no database.

Columns: `unit`, `day`, `reporter`, optionally `report_id`, and one column per metric code of
the catalogue. An empty cell means the metric was not reported; a row whose metric cells are
all empty (or all 0) is a zero report (零报告). One file may hold units of several types, each
row filling the columns of its type's form (`template` writes a form's header); a value in a
column off the row's form is refused like any metric off the form. Files saved by spreadsheet
programs are read as UTF-8 (with or without BOM) or, failing that, GB 18030.
"""

import csv
import io

from shared.catalogue import Form
from shared.errors import FieldError

FIXED = ("unit", "day", "reporter", "report_id")
REQUIRED = ("unit", "day", "reporter")


class CsvRefused(Exception):
    """The file as a whole cannot be read: no rows are taken from it."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message_en)
        self.error = error


def decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvRefused(FieldError("body", "bad_encoding", "无法识别文件编码(请用 UTF-8)",
                                "cannot decode the file (use UTF-8)"))


def _number(cell: str) -> int | float | str:
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        return float(cell)
    except ValueError:
        return cell  # refused as not a number, naming the cell's metric


def read_reports(data: bytes, max_rows: int) -> list[tuple[dict, list[FieldError]]]:
    """Each data row as a report payload (as the JSON API takes it), with the reasons a row
    could not be read. Blank lines are skipped; `index` in results counts data rows."""
    text = decode(data)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise CsvRefused(FieldError("header", "empty_file", "文件为空", "the file is empty")
                         ) from None
    except csv.Error as exc:
        raise CsvRefused(FieldError("header", "bad_csv", "不是有效的 CSV", f"not CSV: {exc}")
                         ) from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvRefused(FieldError(
            "header", "missing_column", f"缺少列:{', '.join(missing)}",
            f"missing column(s): {', '.join(missing)} (header: unit, day, reporter, metrics…)"))
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated or "" in header:
        raise CsvRefused(FieldError(
            "header", "bad_header", "列名重复或为空", f"empty or repeated column names "
            f"{duplicated}"))
    metrics = [(i, h) for i, h in enumerate(header) if h not in FIXED]
    fixed = {h: i for i, h in enumerate(header) if h in FIXED}
    out: list[tuple[dict, list[FieldError]]] = []
    try:
        for line, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(out) >= max_rows:
                raise CsvRefused(FieldError(
                    "body", "too_many", f"一次最多 {max_rows} 份报告",
                    f"at most {max_rows} reports in one request"))
            errors = []
            if len(row) != len(header):
                errors.append(FieldError("row", "bad_row", f"第 {line} 行应有 {len(header)} 列",
                                         f"line {line} has {len(row)} cells, not {len(header)}"))
                row = (row + [""] * len(header))[: len(header)]
            payload: dict = {name: row[i].strip() for name, i in fixed.items()
                             if name in REQUIRED or row[i].strip()}
            payload["values"] = {code: _number(row[i].strip()) for i, code in metrics
                                 if row[i].strip()}
            out.append((payload, errors))
    except csv.Error as exc:
        raise CsvRefused(FieldError("body", "bad_csv", "不是有效的 CSV", f"not CSV: {exc}")
                         ) from None
    return out


def template(form: Form) -> bytes:
    """An empty file for one form: the fixed columns, then the form's metrics (required first),
    with a BOM so that spreadsheet programs read it as UTF-8."""
    out = io.StringIO()
    csv.writer(out).writerow([*FIXED, *form.required, *form.optional])
    return ("\ufeff" + out.getvalue()).encode()
