"""The one reader of the user's tables: .csv, .tsv, .csv.gz, .tsv.gz, .parquet and .xlsx, by extension.

Every table a study reads goes through :func:`read_table`, which returns every cell as text (blank cells
``""``) with the row numbers a spreadsheet shows (header = row 1) as the index, so that every later message
can name the file, the row and the column. What can go wrong with a file becomes one
:class:`DataError` line that names the file, the row where there is one, and the
config key that points at the file: a missing file, a folder, no read permission, a file whose content does
not match its extension (a workbook or a Parquet file named .csv, gzip without .gz, an old .xls, binary
data), text that is not in the declared encoding (UTF-8 by default; a byte-order mark is accepted, UTF-16
with its mark too), a quoted field that never closes, rows with more fields than the header (an unquoted
decimal comma, a name with a comma; trailing empty fields are ignored), a header naming a column twice, an
empty file, a header without rows, and required columns that are missing (with the near misses in the
header). Parsing a cell (numbers, SMILES, labels) is the cleaning step's job (:mod:`.clean`).
"""

from __future__ import annotations

import csv
import difflib
import gzip
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TEXT_SEPARATORS = {".csv": ",", ".txt": ",", ".tsv": "\t", ".tab": "\t"}
PARQUET = (".parquet", ".pq")
EXCEL = (".xlsx", ".xlsm")
SUPPORTED = ".csv, .tsv, .csv.gz, .tsv.gz, .parquet or .xlsx"


class DataError(ValueError):
    """A table cannot be used; the message names the file and the column or row (and the config key)."""


def _data_error(message: str) -> DataError:
    return DataError(" ".join(message.split()))


def table_kind(path: str | Path) -> tuple[str, str | None, bool]:
    """(kind, separator, gzip) of a table file by its name: kind is ``text``, ``parquet``, ``xlsx``, ``xls``
    or ``unknown``."""
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    stem = name[:-3] if gz else name
    suffix = Path(stem).suffix
    if suffix in TEXT_SEPARATORS:
        return "text", TEXT_SEPARATORS[suffix], gz
    if gz:
        return "unknown", None, gz
    if suffix in PARQUET:
        return "parquet", None, False
    if suffix in EXCEL:
        return "xlsx", None, False
    if suffix == ".xls":
        return "xls", None, False
    return "unknown", None, False


def _check_file(p: Path, what: str) -> None:
    if p.is_dir():
        inside = sorted(x.name for x in p.iterdir() if x.is_file() and table_kind(x)[0] != "unknown")[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise _data_error(f"{what}: {p} is a folder, not a table file; give the path of the table itself{hint}")
    if not p.exists():
        if p.is_symlink():
            raise _data_error(f"{what}: file not found: {p} (a link to a file that does not exist)")
        parent = next((a for a in p.parents if a.exists()), None)
        where = "" if parent == p.parent else f" (the folder {p.parent} does not exist either)"
        if any(part.startswith(("~", "$")) for part in p.parts):
            where += " ('~' and '$VARIABLES' are not expanded in config paths: write the full path)"
        raise _data_error(f"{what}: file not found: {p}{where}; relative paths are relative to the working "
                          "directory")
    if not p.is_file():
        raise _data_error(f"{what}: {p} is not a regular file (a pipe or a device?); give the path of a table file")
    try:
        with open(p, "rb"):
            pass
    except PermissionError:
        raise _data_error(f"{what}: {p} cannot be read: permission denied (give yourself read permission, "
                          f"e.g. chmod u+r {p})") from None
    except OSError as exc:
        raise _data_error(f"{what}: {p} cannot be read: {exc.strerror or exc}") from None


def _head(p: Path, gz: bool, what: str, n: int = 8192) -> bytes:
    try:
        if gz:
            with gzip.open(p, "rb") as fh:
                return fh.read(n)
        with open(p, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _data_error(f"{what}: {p} is not a readable gzip file ({exc}); a .gz name needs gzip content "
                          "(decompress it, or drop .gz from the name)") from None


def _content_kind(head: bytes) -> str | None:
    """What the first bytes say the file is, where that is not plain text."""
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        return "binary"
    return None


def read_table(path: str | Path, *, what: str, required: Sequence[str] = (),
               config_keys: Mapping[str, str] | None = None, sheet: str | int | None = None,
               encoding: str | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """Read a table file into text cells, with the checks and one-line messages of the module docstring.

    ``what``: the config key of the table (e.g. ``properties.density.target``), named in every message;
    ``required``: columns that must be present; ``config_keys``: column -> the config key naming it (said in
    a missing-column message); ``sheet``: the sheet of a workbook (name or 0-based position; ``None`` = the
    only sheet, or the one sheet holding the required columns); ``encoding``: of a text file (default
    UTF-8); ``notes``: collects what the reader worked around (ignored trailing separators, the sheet it
    chose), for the study's checks.

    Returns a DataFrame of ``str`` cells (blank = ``""``), columns named by the stripped header, index =
    row number as a spreadsheet shows it (header = row 1; for Parquet: position + 2, as if it had one).
    """
    p = Path(path)
    _check_file(p, what)
    kind, sep, gz = table_kind(p)
    notes = notes if notes is not None else []
    head = _head(p, gz, what)
    content = _content_kind(head)
    if kind == "xls" or content == "xls":
        raise _data_error(f"{what}: {p} is an old Excel workbook (.xls) or an encrypted one, which cannot be read: "
                          "save it as .xlsx (without a password) or as CSV")
    if kind == "unknown":
        raise _data_error(f"{what}: {p}: unknown table type (the file name ends in "
                          f"{''.join(Path(p.name).suffixes) or 'no extension'}); name it by its format: {SUPPORTED}")
    if kind == "text":
        if content == "zip":
            raise _data_error(f"{what}: {p} is an Excel workbook (or another zip archive), not text: rename it "
                              "to .xlsx, or save it as CSV")
        if content == "parquet":
            raise _data_error(f"{what}: {p} is a Parquet file, not text: rename it to .parquet")
        if content == "gzip":
            raise _data_error(f"{what}: {p} is gzip-compressed: name it {p.name}.gz (or decompress it)")
        if content == "binary":
            offset = head.index(b"\x00")
            raise _data_error(f"{what}: {p} is not a readable CSV file (binary content: byte 0x00 at offset "
                              f"{offset}); tables must be text ({SUPPORTED})")
        raw = _read_text(p, sep, gz, encoding, content, what, required)
        frame = _frame_from_rows(raw, p, what, notes, required)
    elif kind == "parquet":
        if content != "parquet":
            raise _data_error(f"{what}: {p} is not a Parquet file (its first bytes are not 'PAR1'); name it by "
                              f"its format: {SUPPORTED}")
        frame = _read_parquet(p, what)
    else:
        if content != "zip":
            raise _data_error(f"{what}: {p} is not an Excel workbook (.xlsx is a zip archive; this file is "
                              "not); name it by its format")
        raw = _read_xlsx(p, what, sheet, required, notes)
        frame = _frame_from_rows(raw, p, what, notes, required)
    _check_columns(frame, p, what, required, config_keys or {})
    return frame


def read_header(path: str | Path, *, what: str, **kwargs: Any) -> list[str]:
    """The column names of a table (the same checks as :func:`read_table`)."""
    return [str(c) for c in read_table(path, what=what, **kwargs).columns]


# ---- text -------------------------------------------------------------------------------------------


def _read_text(p: Path, sep: str, gz: bool, encoding: str | None, content: str | None, what: str,
               required: Sequence[str] = ()) -> pd.DataFrame:
    """Every record of a delimited text file as strings (no header interpretation), index = record position."""
    if encoding is None or encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        enc = "utf-16" if content == "utf-16" else "utf-8-sig"
    else:
        enc = encoding
    try:
        return pd.read_csv(p, sep=sep, header=None, dtype=str, na_filter=False, keep_default_na=False,
                           skip_blank_lines=False, encoding=enc, compression="gzip" if gz else None, engine="c")
    except UnicodeDecodeError as exc:
        raise _data_error(_encoding_message(p, gz, enc, exc, what)) from None
    except LookupError:
        raise _data_error(f"config key {what}.encoding: unknown encoding {encoding!r} (e.g. utf-8, latin-1, "
                          "cp1252)") from None
    except pd.errors.EmptyDataError:
        pass  # empty, or blank lines before the header: the slow path sorts that out
    except pd.errors.ParserError as exc:
        unclosed = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if unclosed:
            row = int(unclosed.group(1)) + 1
            raise _data_error(f"{what}: {p} row {row}: a quoted field (opening \") is never closed; close the "
                              "quote or remove it") from None
    except (OSError, EOFError) as exc:
        raise _data_error(f"{what}: {p} cannot be read ({exc})") from None
    return _read_text_slowly(p, sep, gz, enc, what, required)


def _encoding_message(p: Path, gz: bool, enc: str, exc: UnicodeDecodeError, what: str) -> str:
    try:
        data = gzip.open(p, "rb").read() if gz else p.read_bytes()
        start = data.find(exc.object[max(0, exc.start - 20):exc.start + 20]) if isinstance(exc.object, bytes) else -1
        start = start + min(20, exc.start) if start >= 0 else exc.start
        row = data[:start].count(b"\n") + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        snippet = data[line_start:start + 12].split(b"\n")[0].decode("utf-8", errors="replace")
        byte = f"0x{data[start]:02x}"
    except (OSError, IndexError, EOFError):
        row, snippet, byte = None, "", "?"
    where = f" row {row}{' (the header)' if row == 1 else ''}: byte {byte} in {snippet!r}" if row else ""
    name = "UTF-8" if enc.startswith("utf-8") else enc
    return (f"{what}: {p} is not {name} text:{where}; save the file as UTF-8 (in Excel: 'CSV UTF-8'), or set "
            f"{what}.encoding to its encoding (e.g. latin-1 or cp1252)")


def _read_text_slowly(p: Path, sep: str, gz: bool, enc: str, what: str, required: Sequence[str] = ()) -> pd.DataFrame:
    """Python's csv module over the whole file: slower, but it knows every record's fields."""
    opener = gzip.open if gz else open
    try:
        with opener(p, "rt", encoding=enc, newline="") as fh:
            records = list(csv.reader(fh, delimiter=sep, quotechar='"', doublequote=True, strict=False))
    except UnicodeDecodeError as exc:
        raise _data_error(_encoding_message(p, gz, enc, exc, what)) from None
    except (csv.Error, OSError, EOFError) as exc:
        raise _data_error(f"{what}: {p} is not a readable CSV file ({exc})") from None
    header_at = _header_position(records, required)
    if header_at is None:
        return pd.DataFrame()
    width = len(records[header_at])
    too_long = []
    for i in range(header_at + 1, len(records)):
        record = records[i]
        if len(record) > width:
            if all(not c.strip() for c in record[width:]):
                records[i] = record[:width]
            else:
                too_long.append((i + 1, record))
        elif len(record) < width:
            records[i] = record + [""] * (width - len(record))
    if too_long:
        row, record = too_long[0]
        more = f" (and {len(too_long) - 1} more rows, e.g. row {too_long[1][0]})" if len(too_long) > 1 else ""
        shown = sep.join(record)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        sep_name = "comma" if sep == "," else "tab"
        raise _data_error(
            f"{what}: {p} row {row} has {len(record)} fields but the header has {width}{more}: {shown!r}; a "
            f"{sep_name} inside a value (a decimal comma such as 1,23, or a name with a comma) must be quoted, "
            "or use '.' for decimals")
    widest = max(len(r) for r in records)
    return pd.DataFrame([r + [""] * (widest - len(r)) for r in records], dtype=str)


# ---- parquet and xlsx -------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """One cell of a typed table (Parquet, Excel) as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, datetime | date | time | pd.Timestamp):
        return "" if pd.isna(value) else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _read_parquet(p: Path, what: str) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise _data_error(f"{what}: reading {p} needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(p)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a corrupt file
        raise _data_error(f"{what}: {p} is not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    names = [str(n).strip() for n in table.column_names]
    columns = {}
    for i, name in enumerate(names):
        values = table.column(i).to_pylist()
        columns[i] = [_cell_text(v) for v in values]
    frame = pd.DataFrame(columns, dtype=str) if columns else pd.DataFrame()
    frame.columns = names
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    _check_duplicate_names(names, p, what)
    return frame


def _read_xlsx(p: Path, what: str, sheet: str | int | None, required: Sequence[str], notes: list[str]) -> pd.DataFrame:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        raise _data_error(f"{what}: reading {p} needs openpyxl (pip install openpyxl)") from None
    try:
        book = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zipfile, KeyError, InvalidFileException...
        raise _data_error(f"{what}: {p} is not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        names = list(book.sheetnames)
        if sheet is not None:
            if str(sheet) in names:  # a sheet named 2024 (YAML reads it as a number)
                chosen = str(sheet)
            elif isinstance(sheet, int) and not isinstance(sheet, bool):
                if not 0 <= sheet < len(names):
                    raise _data_error(f"config key {what}.sheet: {p} has no sheet {sheet!r}; its sheets: {names} "
                                      f"(a number is a position: 0 to {len(names) - 1})")
                chosen = names[sheet]
            elif str(sheet) in names:
                chosen = str(sheet)
            else:
                raise _data_error(f"config key {what}.sheet: {p} has no sheet {sheet!r}; its sheets: {names}")
            rows = _sheet_rows(book[chosen])
        elif len(names) == 1:
            rows = _sheet_rows(book[names[0]])
        else:
            sheets = {name: _sheet_rows(book[name]) for name in names}
            holding = [n for n, r in sheets.items() if set(required) <= set(_header_of(r))]
            if len(holding) > 1:
                raise _data_error(f"{what}: {p} has {len(names)} sheets and {holding} all have the columns "
                                  f"{list(required)}: set {what}.sheet to the one to read")
            chosen = holding[0] if holding else names[0]
            notes.append(f"{what}: {p} has {len(names)} sheets {names}; read {chosen!r}"
                         f"{' (the one with the columns ' + str(list(required)) + ')' if holding else ''} "
                         f"(set {what}.sheet to choose)")
            rows = sheets[chosen]
    finally:
        book.close()
    width = max((len(r) for r in rows), default=0)
    return pd.DataFrame([list(r) + [""] * (width - len(r)) for r in rows], dtype=str)


def _sheet_rows(ws: Any) -> list[list[str]]:
    rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    return rows


def _header_of(rows: list[list[str]]) -> list[str]:
    return next(([c.strip() for c in r] for r in rows if any(c.strip() for c in r)), [])


# ---- from records to a table ------------------------------------------------------------------------


def _frame_from_rows(raw: pd.DataFrame, p: Path, what: str, notes: list[str], required: Sequence[str]) -> pd.DataFrame:
    """Header = the first non-blank record (or the first naming the required columns, below a title); blank
    records dropped; index = spreadsheet row numbers."""
    if raw.empty or raw.shape[1] == 0:
        raise _data_error(f"{what}: {p} is empty")
    raw = raw.fillna("")
    raw.index = pd.RangeIndex(1, len(raw) + 1)
    stripped = {c: raw[c].str.strip() for c in raw.columns}
    blank = np.logical_and.reduce([(s == "").to_numpy() for s in stripped.values()])
    filled = np.flatnonzero(~blank)
    if filled.size == 0:
        raise _data_error(f"{what}: {p} is empty")
    head = [[str(stripped[c].iloc[i]) for c in raw.columns] for i in filled[:HEADER_SEARCH]]
    header_pos = filled[_header_position(head, required) or 0]
    if header_pos != filled[0]:
        notes.append(f"{what}: {p}: the header is row {header_pos + 1}; the rows above it (a title or comments) "
                     "are not read")
    blank[:header_pos] = True
    names = [str(stripped[c].iloc[header_pos]) for c in raw.columns]
    body = raw.iloc[header_pos + 1:][~blank[header_pos + 1:]]
    keep = []
    for j, name in enumerate(names):
        if not name:
            if (body.iloc[:, j].str.strip() == "").all():
                continue  # a trailing separator in the header, or an empty column without a name
            names[j] = f"unnamed column {j + 1}"
        keep.append(j)
    _check_duplicate_names([names[j] for j in keep], p, what, positions=[j + 1 for j in keep])
    body = body.iloc[:, keep]
    body.columns = [names[j] for j in keep]
    body.index.name = "row"
    return body


HEADER_SEARCH = 20  # non-blank rows searched for a header holding the required columns (below a title)


def _header_position(records: Sequence[Sequence[str]], required: Sequence[str]) -> int | None:
    """Position of the header: the first non-blank record, or a later one (among the first non-blank ones) that
    names every required column where the first does not (a title or comment lines above the header)."""
    filled = [i for i, r in enumerate(records) if any(str(c).strip() for c in r)]
    if not filled:
        return None
    wanted = set(required)
    if not wanted or wanted <= {str(c).strip() for c in records[filled[0]]}:
        return filled[0]
    for i in filled[1:HEADER_SEARCH]:
        if wanted <= {str(c).strip() for c in records[i]}:
            return i
    return filled[0]


def _check_duplicate_names(names: Sequence[str], p: Path, what: str, positions: Sequence[int] | None = None) -> None:
    positions = list(positions) if positions is not None else list(range(1, len(names) + 1))
    seen: dict[str, list[int]] = {}
    for name, pos in zip(names, positions, strict=True):
        seen.setdefault(name, []).append(pos)
    twice = {n: ps for n, ps in seen.items() if len(ps) > 1}
    if twice:
        name, ps = next(iter(twice.items()))
        others = f" (also: {sorted(twice)[1:]})" if len(twice) > 1 else ""
        raise _data_error(f"{what}: {p} has {len(ps)} columns named {name!r} (columns "
                          f"{', '.join(map(str, ps))} of the header){others}: which one is meant cannot be "
                          "guessed; rename or delete the others")


def _check_columns(frame: pd.DataFrame, p: Path, what: str, required: Sequence[str],
                   config_keys: Mapping[str, str]) -> None:
    present = [str(c) for c in frame.columns]
    missing = [c for c in required if c not in present]
    if missing:
        raise _data_error(f"{what}: {p} has no column(s) {missing}; columns present: {present}"
                          f"{column_hint(missing, present, config_keys)}")
    if frame.empty:
        raise _data_error(f"{what}: {p} has a header but no rows")


def _looks_like_data(cell: str) -> bool:
    """A header cell that is a number or a repeat-unit SMILES: the file has no header row."""
    try:
        float(cell)
        return True
    except ValueError:
        return "*" in cell and " " not in cell


def column_hint(missing: Sequence[str], present: Sequence[str], config_keys: Mapping[str, str]) -> str:
    """' (did you mean ...?)' for near misses (case, spaces, typos), a separator or header hint, else ''."""
    if len(present) == 1 and any(sep in present[0] for sep in (";", "\t", "|")):
        return " (the header is one column: is the file separated by ';' or tabs instead of commas?)"
    if len(present) == 1 and "," in present[0]:
        return " (the header is one column: is the file comma-separated but named .tsv?)"
    if any(_looks_like_data(c) for c in present if c):
        return " (the first row looks like data, not a header: add a header row naming the columns)"
    hints = []
    folded = {c.strip().lower(): c for c in present}
    for name in missing:
        close = [folded[name.strip().lower()]] if name.strip().lower() in folded else \
            difflib.get_close_matches(name, present, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} for {name!r}")
    keys = [config_keys[m] for m in missing if m in config_keys]
    parts = ([f"did you mean {', '.join(hints)}?"] if hints else []) + \
        ([f"fix the file's header or the config key {' / '.join(keys)}"] if keys else [])
    return f" ({' '.join(parts)})" if parts else ""


# ---- tables the workflow wrote ----------------------------------------------------------------------

# columns of the prepared tables that hold numbers; every other column (keys, ids, class labels) is text
PREPARED_NUMBERS = ("value", "y", "source_row", "temperature_K", "wf_kappa", "wf_sigma", "wf_log10_ratio")


def read_prepared(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A prepared table (``prepared/<property>/{source,target}.csv``) with its labels as text.

    Keys, ids and class labels stay strings ('01' stays '01', a class column of numbers does not become
    int); the value columns (:data:`PREPARED_NUMBERS`) are floats (``source_row`` an integer).
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                        usecols=list(columns) if columns is not None else None)
    for column in PREPARED_NUMBERS:
        if column in frame.columns:
            numbers = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
            frame[column] = numbers.astype("int64") if column == "source_row" and numbers.notna().all() else numbers
    return frame
