"""Parsing delimited text quickly and exactly: cells, missing values, row labels, error positions.

In: a text file's bytes; out: a :class:`Table` (the header cells, the numeric rows with NaN where a
cell is missing, row labels, each row's line number as an editor counts it). Line and cell
boundaries are found with numpy on the bytes, numbers are parsed by ``np.loadtxt``'s C reader, and
only rows holding text go through Python. :mod:`.csvfile` turns a table into a recording.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .container import short_error

TIME_COLUMN = re.compile(r"^\s*(time|t|times|timestamp|seconds|sec|s)\s*([_ ]?\(?\[?(s|sec|seconds|ms)\]?\)?)?\s*$",
                          re.IGNORECASE)
INDEX_COLUMN = re.compile(r"^\s*(|unnamed: ?0|index|idx|frame|frames|sample|samples|#)\s*$",
                           re.IGNORECASE)
#: cell texts (compared in lower case, quotes and spaces stripped) that mean "no value here"
MISSING_TOKENS = frozenset({"", "null", "nan", "na", "n/a", "#n/a"})
_KEY_VALUE = re.compile(r"(\w+)\s*=\s*([^\s,;]+)")
_NUMERIC_BYTES = b"0123456789.+-eE \n"


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _cell(text: str) -> str:
    return text.strip().strip('"').strip()


def _is_value(text: str) -> bool:
    """A number or a missing-value token (not a name)."""
    cell = _cell(text)
    return cell.lower() in MISSING_TOKENS or is_number(cell)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # Windows exports: "µV" in Latin-1 / cp1252
        return data.decode("latin-1")


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    if '"' in line:  # quoted cells may hold the separator
        return next(csv.reader([line], delimiter=delimiter))
    return line.split(delimiter)


def _read_bytes(path: Path) -> bytes:
    """The file as UTF-8 (or 8-bit) bytes without a byte-order mark, lines ending in ``\\n``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    # byte-order marks (Unicode Standard, section 23.8): UTF-32 before UTF-16, whose mark it extends
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                       (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            try:
                raw = raw[len(bom):].decode(codec).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: not a text (CSV) file (broken {codec.upper()} text)") from exc
            break
    else:
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if b"\x00" in raw:
            raise InputError(f"{path}: not a text (CSV) file")
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw


@dataclass
class Table:
    """A delimited text file parsed into numbers.

    ``values`` is (rows, columns) float64 with NaN for missing cells; ``column_numbers`` gives
    each column's 1-based position in the file, ``line_numbers`` each row's 1-based line.
    """

    header: list[str] | None  # names of every file column (None: no header row)
    values: np.ndarray
    column_numbers: list[int]
    line_numbers: np.ndarray
    row_labels: list[str] | None
    comments: dict[str, str]
    delimiter: str | None


def read_table(path: Path) -> Table:
    """Parse a delimited text file (see the module docstring for what is accepted).

    Raises
    ------
    InputError
        Not text, no rows, a cell that is not a number or a row with the wrong number of
        columns (naming the line and the column).
    """
    buf = bytearray(_read_bytes(path))
    b = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(b == 10)
    starts = np.r_[0, newlines + 1]
    ends = np.r_[newlines, len(b)]
    if len(starts) and starts[-1] == len(b):  # the file ends with a line end
        starts, ends = starts[:-1], ends[:-1]
    blank, comment = _blank_and_comment_lines(b, starts, ends)
    comments: dict[str, str] = {}
    for i in np.flatnonzero(comment):
        for key, value in _KEY_VALUE.findall(_decode(bytes(buf[starts[i]:ends[i]]))):
            comments[key.lower()] = value
    content = np.flatnonzero(~blank & ~comment)
    if len(content) == 0:
        raise InputError(f"{path}: the CSV file holds no rows")
    first_text = _decode(bytes(buf[starts[content[0]]:ends[content[0]]]))
    delimiter = next((d for d in (";", "\t", ",") if d in first_text), None)
    first = _split(first_text, delimiter)
    has_header = (any(not _is_value(f) for f in first[1:])
                  or (len(first) == 1 and not _is_value(first[0])))
    header = [_cell(f) for f in first] if has_header else None
    rows = content[1:] if has_header else content
    if len(rows) == 0:
        raise InputError(f"{path}: the CSV file has a header but no rows")
    s, e = starts[rows], ends[rows]
    line_numbers = rows + 1  # 1-based, as an editor counts lines

    first_row = _split(_decode(bytes(buf[s[0]:e[0]])), delimiter)
    n_file = len(first_row)
    if delimiter is not None:
        # a separator closing a row (lab exports write one after every row) opens no column
        d = ord(delimiter)
        seps = np.flatnonzero(b[s[0]:e[-1]] == d) + s[0]
        count = np.searchsorted(seps, e) - np.searchsorted(seps, s) + 1
        closing = b[e - 1] == d
        fields = count - closing
        n_file = int(fields[0])
        if header is not None:
            while len(header) > max(int(fields.max()), 1) and header[-1] == "":
                header.pop()  # the header row's own closing separator
            n_file = len(header)
        b[e[closing & (count == n_file + 1)] - 1] = 32
    elif header is not None:
        n_file = len(header)
    labels = None
    if not _is_value(first_row[0]) and (header is None or INDEX_COLUMN.match(header[0])):
        labels = _cut_row_labels(buf, s, e, delimiter)
    offset = 1 if labels is not None else 0
    n_expected = n_file - offset
    if delimiter is not None and delimiter != ",":
        body = b[s[0]:e[-1]]
        body[body == 44] = 46  # decimal commas (European exports with ; or tab separators)
    values = _parse_rows(buf, b, s, e, line_numbers, delimiter, n_expected, offset,
                         header is not None, path)
    return Table(header, values, list(range(offset + 1, offset + 1 + values.shape[1])),
                 line_numbers, labels, comments, delimiter)


def _blank_and_comment_lines(b: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Masks of the lines that hold only white space, and of those whose first character is '#'."""
    pos = starts.copy()
    for _ in range(256):  # step over leading white space, a few rounds for indented files
        inside = pos < ends
        at = np.where(inside, b[np.minimum(pos, len(b) - 1)], 10) if len(b) else np.full(len(pos), 10)
        lead = inside & ((at == 32) | (at == 9))
        if not lead.any():
            break
        pos[lead] += 1
    inside = pos < ends
    at = b[np.minimum(pos, max(len(b) - 1, 0))] if len(b) else np.zeros(len(pos), np.uint8)
    return ~inside, inside & (at == ord("#"))


def _cut_row_labels(buf: bytearray, s: np.ndarray, e: np.ndarray, delimiter: str | None) -> list[str]:
    """Take the first cell of every row as its label and blank it (with its separator) out."""
    sep = delimiter.encode("ascii") if delimiter is not None else None
    labels = []
    for a, z in zip(s.tolist(), e.tolist()):
        line = bytes(buf[a:z])
        body = line.lstrip()
        lead = len(line) - len(body)
        if sep is None:
            first = body.split(None, 1)[0] if body else b""
            cut, label = lead + len(first), first
        elif body.startswith(b'"'):  # a quoted label may hold the separator
            close = body.find(b'"', 1)
            end = body.find(sep, close + 1) if close >= 0 else -1
            cut = lead + end + 1 if end >= 0 else len(line)
            label = body[1:close] if close >= 0 else body[1:]
        else:
            end = line.find(sep)
            cut = end + 1 if end >= 0 else len(line)
            label = line[:end] if end >= 0 else line
        labels.append(_cell(_decode(label)))
        buf[a:a + cut] = b" " * cut
    return labels


def _parse_rows(buf: bytearray, b: np.ndarray, s: np.ndarray, e: np.ndarray, line_numbers: np.ndarray,
                delimiter: str | None, n_expected: int, offset: int, has_header: bool,
                path: Path) -> np.ndarray:
    """The rows' numbers as (rows, n_expected) float64; rows holding text are cleaned in Python."""
    allowed = np.zeros(256, dtype=bool)
    allowed[np.frombuffer(_NUMERIC_BYTES, dtype=np.uint8)] = True
    if delimiter is None:
        allowed[9] = True
    else:
        allowed[ord(delimiter)] = True
    lo, hi = int(s[0]), int(e[-1])
    body = b[lo:hi]
    special = np.zeros(len(s), dtype=bool)

    def mark(positions: np.ndarray) -> None:
        if len(positions):
            row = np.searchsorted(s, positions, side="right") - 1
            special[row[positions < e[row]]] = True  # not in a comment line between rows

    mark(np.flatnonzero(~allowed[body]) + lo)  # letters (NULL, NaN), quotes, other bytes
    if delimiter is not None:
        d = ord(delimiter)
        seps = np.flatnonzero(body == d) + lo
        after = np.where(seps + 1 < len(b), b[np.minimum(seps + 1, len(b) - 1)], 10)
        before = np.where(seps > 0, b[np.maximum(seps - 1, 0)], 10)
        mark(seps[(after == d) | (after == 10) | (before == 10)])  # empty cells
        count = np.searchsorted(seps, e) - np.searchsorted(seps, s) + 1
    else:
        space = (body == 32) | (body == 9) | (body == 10)
        cells = np.flatnonzero(~space & np.r_[True, space[:-1]]) + lo
        count = np.searchsorted(cells, e) - np.searchsorted(cells, s)
    wrong = np.flatnonzero(~special & (count != n_expected))
    if len(wrong):
        k = int(wrong[0])
        _raise_column_count(path, int(line_numbers[k]), int(count[k]), n_expected, offset, has_header)

    def clean(k: int) -> str:
        return _clean_row(_decode(bytes(buf[s[k]:e[k]])), delimiter, int(line_numbers[k]),
                          n_expected, offset, has_header, path)

    def assemble() -> bytes:
        cut = special | np.r_[True, s[1:] != e[:-1] + 1] | np.r_[False, special[:-1]]
        bounds = np.r_[np.flatnonzero(cut), len(s)]
        view = memoryview(buf)
        pieces = []
        for a, z in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            pieces.append(clean(a).encode("ascii") if special[a] else view[s[a]:e[z - 1]])
            pieces.append(b"\n")
        return b"".join(pieces)

    try:
        values = _loadtxt(assemble(), delimiter)
    except ValueError as exc:
        rows = _locate_error(exc, clean, len(s))
        try:  # every cell reads as a number in Python: parse the rows as Python cleaned them
            values = _loadtxt(("\n".join(rows) + "\n").encode("ascii"), delimiter)
        except ValueError as again:
            raise InputError(f"{path}: could not parse the rows ({short_error(again)})") from again
    if values.shape[1] != n_expected:  # white space inside cells, say; never silently
        raise InputError(f"{path}: rows hold {values.shape[1]} columns, expected {n_expected}")
    return values


def _loadtxt(data: bytes, delimiter: str | None) -> np.ndarray:
    # numpy's C reader (numpy >= 1.23); comments and quotes were dealt with before
    return np.loadtxt(io.BytesIO(data), delimiter=delimiter, comments=None, dtype=np.float64,
                      ndmin=2, encoding="latin-1")


def _locate_error(exc: ValueError, clean, n_rows: int) -> list[str]:
    """Raise the InputError naming the row and cell that ``np.loadtxt`` failed on, if found.

    Returns every row as Python cleaned it when none is wrong (a cell that Python reads as a
    number or a missing value and numpy does not, such as one of blanks only).
    """
    hint = re.search(r"row (\d+)", str(exc))
    order = []
    if hint:  # numpy counts rows from 0 or 1 depending on the error; look at both and the next
        row = int(hint.group(1))
        order = [k for k in (row - 1, row, row + 1) if 0 <= k < n_rows]
    for k in order:
        clean(k)
    return [clean(k) for k in range(n_rows)]


def _clean_row(line: str, delimiter: str | None, line_number: int, n_expected: int, offset: int,
               has_header: bool, path: Path) -> str:
    """A row as ``np.loadtxt`` reads it: numbers as repr, missing cells as ``nan``."""
    cells = _split(line, delimiter)
    if len(cells) != n_expected:
        _raise_column_count(path, line_number, len(cells), n_expected, offset, has_header)
    out = []
    for j, cell in enumerate(cells):
        text = _cell(cell)
        if text.lower() in MISSING_TOKENS:
            out.append("nan")
            continue
        try:
            out.append(repr(float(text)))
        except ValueError:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise InputError(f"{path}: line {line_number}, column {j + 1 + offset}: "
                             f"'{shown}' is not a number") from None
    return (delimiter or " ").join(out)


def _raise_column_count(path: Path, line_number: int, found: int, expected: int, offset: int,
                        has_header: bool) -> None:
    found, expected = found + offset, expected + offset
    column = min(found, expected) + 1
    what = "the header names" if has_header else "the first row has"
    raise InputError(f"{path}: line {line_number}, column {column}: the row has {found} "
                     f"column{'s' if found != 1 else ''}, {what} {expected}")
