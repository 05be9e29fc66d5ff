"""Reading a CSV with a header row (UTF-8, UTF-16 with its BOM, or gzip-compressed): its feature
columns as numbers, its target column as raw text; a file that is no CSV (an image, a zip, a
binary) or a header that is none is refused, saying what it is."""
from __future__ import annotations

import csv
import gzip
import io
import zlib

import numpy as np

from ..checkpoint.atomic import describe
from ..errors import InvalidValueError, ShapeError
from .targets import number, to_float


FOREIGN = [(b"\x93NUMPY", "a single .npy array"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
           (b"GIF8", "a GIF image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image")]  # by magic number
FOREIGN_FIX = ("gpubp reads its data from a CSV, or an .npz holding X (images: (N, C, H, W) or (N, H, W)) and y; "
               "load the images or arrays into one X and save them with np.savez(path, X=X, y=y)")


def read_csv(path, target, features, require_target):
    """``(X, raw, names, target)``: the feature columns ``names`` as floats, and the target column as
    ``[(line, text)]`` (None when absent or not required)."""
    rows = _csv_rows(path)
    if len(rows) < 2:
        raise InvalidValueError(f"{path}: expected a header row and at least one data row, "
                                f"found {len(rows)} non-empty row(s)")
    rows = _without_empty_margin(rows)
    header = [h.strip() for h in rows[0][1]]
    _check_header(path, header)
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ShapeError(f"{path}, line {line}: {len(row)} values but the header has {len(header)} columns")
    _not_a_sample(path, header, rows[1:])
    again = next((line for line, row in rows[1:] if [c.strip() for c in row] == header), None)
    if again is not None:  # was: "line 52, column 'a': 'a' is not a number"
        raise InvalidValueError(f"{path}, line {again}: the header row again (CSV files joined, each with its header?); "
                                f"remove it")
    missing = [n for n in features or () if n not in header]  # before the target, which they may decide
    if missing:  # was: "no target column", where the target is the one column that is no feature
        npz = (": the model was trained on an .npz, whose X values these name in order; give it an .npz with X"
               if list(features) == [f"x{i}" for i in range(len(features))] else "")
        raise InvalidValueError(f"{path}: the model needs the column(s) {brief(missing)}, not in the header "
                                f"{brief(header)}{npz}{spelled(missing, header)}")
    target = _target_column(path, header, None if target is None else target.strip(), features, require_target)
    names = list(features) if features is not None else [h for h in header if h != target]
    if target in names:  # the answer among the inputs: a model that learns nothing else
        raise InvalidValueError(f"{path}: the target column {target!r} is also one of the features {brief(names)}")
    if not names:
        raise InvalidValueError(f"{path}: no feature column: the header {brief(header)} holds only the target "
                                f"{target!r}")
    cols = [header.index(n) for n in names]
    X = np.empty((len(rows) - 1, len(cols)))
    for i, (line, row) in enumerate(rows[1:]):
        for j, c in enumerate(cols):
            X[i, j] = number(row[c], path, line, header[c])
    raw = None if target is None or not require_target else [(line, row[header.index(target)].strip())
                                                             for line, row in rows[1:]]
    return X, raw, names, target


def _csv_rows(path) -> list:
    """``[(line, values)]`` of the rows holding a value, ``line`` the one each begins on in the
    file (blank rows are skipped, a quoted value may span lines); a quote never closed is refused,
    not read as the rest of the file."""
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True, skipinitialspace=True)
    rows, line = [], 1
    try:
        for row in reader:
            if "".join(row).strip():
                rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidValueError(f"{path}, line {line}: not a CSV row ({exc}): a quote \" never closed, or text "
                                f"after a closing one?") from None
    return rows


def _without_empty_margin(rows) -> list:
    """``rows`` without the empty cells a spreadsheet leaves right of its last named column (1,2,0,,, under
    a,b,label, or a header a,b,label,, over columns with nothing in them): a row was refused for its
    count of values, a column for its lack of a name. A cell with a value there is left to be refused."""
    header = rows[0][1]
    width = len(header)
    while width > 1 and not header[width - 1].strip() and \
            all(len(row) < width or not row[width - 1].strip() for _, row in rows[1:]):
        width -= 1
    return [(line, row[:width] if not "".join(row[width:]).strip() else row) for line, row in rows]


def _text(path) -> str:
    """The file's text: UTF-8 (a BOM allowed) or UTF-16 with its BOM, gzip-compressed or not."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":  # gzip's magic number (a .csv.gz)
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidValueError(f"cannot read {path} ({describe(exc)})") from None
    foreign = next((what for magic, what in FOREIGN if data.startswith(magic)), None)
    if foreign:
        raise InvalidValueError(f"{path} is {foreign}, not a CSV or an .npz: {FOREIGN_FIX}")
    if data[:4] == b"PK\x03\x04":
        raise InvalidValueError(f"{path} is a zip archive (an Excel workbook? an .npz under another name?), not a "
                                f"CSV: save it as CSV in UTF-8, or give an .npz its .npz name")
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].decode(encoding, "replace").count("\n") + 1
        raise InvalidValueError(f"{path}, line {line}: byte {data[exc.start]:#04x} is not {exc.encoding} text "
                                f"(a file from another program or in another encoding?); save it as CSV in UTF-8") from None
    if "\x00" in text:  # csv reads NUL as a character: a binary file would become labels
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidValueError(f"{path}, line {line}: holds a NUL character, so it is not a text CSV (a binary "
                                f"file?); save it as CSV in UTF-8")
    return text


def _check_header(path, header):
    """Every column named, each name once (a repeated name would be read twice as one column), and
    not every name a number: that is a first sample where the header row is missing."""
    separator = next((c for c in ";\t|" if c in header[0]), None) if len(header) == 1 else None
    if separator:
        raise InvalidValueError(f"{path}: the header is the one column {header[0]!r:.60}, its values separated by "
                                f"{separator!r}; gpubp reads comma-separated values: save the file with commas")
    if all(_is_number(h) for h in header):
        first = ",".join(header[:3]) + (",..." if len(header) > 3 else "")
        raise InvalidValueError(f"{path}: the first row ({first}) holds only numbers, so it is a sample, not a "
                                f"header; the CSV needs a header row naming its columns (add one, e.g. x0,x1,...,label)")
    blank = [i + 1 for i, h in enumerate(header) if not h]
    if blank:
        index = " (a pandas index column: save with to_csv(..., index=False))" if blank == [1] else ""
        raise InvalidValueError(f"{path}: column(s) {blank} of the header have no name{index}; every column "
                                f"needs one")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InvalidValueError(f"{path}: the header names the column(s) {repeated} more than once; "
                                f"every column needs a name of its own")


def _not_a_sample(path, header, rows):
    """Refuse a first row of numbers and labels: a CSV without its header (as UCI's iris.data), whose
    first sample was taken for the header (lost, its values the column names) where each name that is
    no number is a value of its column in the rows below (a label, 'setosa'), which a name never is."""
    words = [c for c, h in enumerate(header) if not _is_number(h)]
    if len(words) == len(header):
        return
    lines = []
    for c in words:
        lines.append(next((line for line, row in rows if row[c].strip() == header[c]), None))
        if lines[-1] is None:
            return
    first = ",".join(header[:5]) + (",..." if len(header) > 5 else "")
    raise InvalidValueError(f"{path}: the first row ({first}) is a sample, not a header: it holds numbers, and "
                            f"{header[words[0]]!r} is a value of its column (line {lines[0]} too); the CSV needs a "
                            f"header row naming its columns (add one, e.g. x0,x1,...,label)")


def _target_column(path, header, target, features, require_target):
    if target is None:
        if features is not None:  # a trained model: the target is whatever column is not a feature
            rest = [h for h in header if h not in features]
            target = rest[0] if len(rest) == 1 else None
        elif require_target:
            target = header[-1]
    if target is not None and target not in header:
        if require_target:
            raise InvalidValueError(f"{path}: no column {target!r} to predict; the header has {brief(header)}"
                                    f"{spelled([target], header)}")
        target = None
    if require_target and target is None:
        raise InvalidValueError(f"{path}: no target column (give target=COLUMN); the header has {brief(header)}")
    return target


def spelled(names, header) -> str:
    """For columns ``names`` not in ``header``: those it holds spelled in another case or with other
    separators ('Price', 'price-k' for 'price_k'), said as what was meant; else ""."""
    def key(name):
        return "".join(c for c in name.casefold() if c.isalnum())
    found = {key(h): h for h in header}
    meant = [(n, found[key(n)]) for n in names if key(n) in found]
    return "; spelled so in the file: " + ", ".join(f"{h!r} for {n!r}" for n, h in meant[:4]) if meant else ""


def _is_number(text) -> bool:
    try:
        to_float(text)
    except ValueError:
        return False
    return True


def brief(names, ends=4) -> str:
    """``names`` as a list, its middle left out when long (a header of 784 pixels would fill the screen)."""
    if len(names) <= 3 * ends:
        return repr(list(names))
    shown = ", ".join(map(repr, [*names[:ends], "...", *names[-ends:]])).replace("'...'", "...")
    return f"[{shown}] ({len(names)} columns)"
