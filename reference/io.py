"""Reading untrusted files: bounded JSON, raw bytes and safetensors, each failure one line.

Every file clearform reads that a user (or anyone who could edit a run folder
or a downloaded model) controls comes through here: ``--config`` files, the
``config.json`` / ``state.json`` of a run, a Hugging Face directory's
``config.json``, its index and its safetensors files. The readers check, in
this order and before anything is parsed or allocated:

* the path: no NUL byte; it exists and names a *regular* file (``os.stat``
  before opening, so a FIFO never blocks and ``/dev/zero`` is never read);
* the size: ``st_size`` ≤ ``max_bytes``, and at most ``max_bytes + 1`` bytes
  are ever read (a file that grows while read is still bounded);
* JSON: UTF-8 (strict), nesting depth ≤ ``max_depth`` (scanned before
  ``json.loads``, so deep nesting never reaches a ``RecursionError``),
  integers of at most :data:`MAX_INT_DIGITS` digits, floats finite (no
  ``NaN`` / ``Infinity`` literals, no ``1e400``), no duplicate keys;
* safetensors: the header (length, JSON, dtypes, shapes, offsets, metadata)
  is validated in full before any tensor byte is read; the file size must be
  exactly the header's data end; an optional SHA-256 must match.

Every failure raises the caller's error class (``ConfigError`` for configs,
``CheckpointError`` for checkpoints) with one line ``"<file>: <problem>"``;
values echoed in a message go through :func:`short`. This module imports no
other clearform module, so any of them may import it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import reprlib
import stat
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MAX_JSON_BYTES = 16 * 2**20  # a config or state file is a few KB; 16 MiB is far past any real one
MAX_JSON_DEPTH = 64  # real configs nest 3-4 deep; json's C parser recurses, so depth is capped before it
MAX_INT_DIGITS = 40  # 2**128 has 39 digits; Python refuses str -> int past 4300 digits with a ValueError
MAX_FLOAT_CHARS = 100  # a float literal longer than this is not a number anyone wrote
MAX_SAFETENSORS_BYTES = 2**34  # 16 GiB: the default cap on a whole safetensors file
MAX_HEADER_BYTES = 100 * 10**6  # the safetensors library's own cap on the JSON header
MAX_TENSOR_DIMS = 16  # NumPy allows 64; no weight has more than a handful
MAX_TENSOR_ELEMENTS = 2**40  # one tensor; the file-size check bounds the total anyway

# safetensors dtype -> the little-endian NumPy dtype its bytes are read as. BF16 is read as
# uint16 and widened to float32 (NumPy has no bfloat16); BOOL is read as uint8 and checked 0/1.
SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}
# dtypes of the safetensors format that NumPy cannot hold: named in the error rather than "unknown".
_UNSUPPORTED_DTYPES = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64")
_TENSOR_KEYS = {"dtype", "shape", "data_offsets"}

_CHUNK = 1 << 20
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 100
_REPR.maxlevel = 3
# A JSON string literal (escapes included), unrolled so matching is linear.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BRACKETS = np.frombuffer(b"[]{}", dtype=np.uint8)


# --------------------------------------------------------------------------- message helpers


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters with "…".

    Safe on anything a parser can return: a 50 MB string is cut before it is
    repr'd, an int too long for ``repr`` (over 4,300 digits) is described by
    its size, and an object whose repr fails or is multi-line is still one line.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 512:
        text = f"<int of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    elif isinstance(value, (str, bytes)) and len(value) > 4 * limit:
        text = repr(value[: 2 * limit])
    else:
        try:
            text = _REPR.repr(value)
        except Exception:  # a repr that raises (huge nested ints, broken __repr__): name the type only
            text = f"<{type(value).__name__}>"
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\n", "\\n").replace("\r", "\\r"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def display_path(path: str | bytes | os.PathLike) -> str:
    """A path as it appears in a message: control characters (NUL, newline …) escaped, very long paths cut."""
    name = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    name = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)
    return name if len(name) <= 300 else name[:150] + "…" + name[-149:]


def _label(path: str | bytes | os.PathLike, what: str | None) -> str:
    return f"{what} {display_path(path)}" if what else display_path(path)


# --------------------------------------------------------------------------- regular files


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    """None for a regular file, else what the file is instead."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in _FILE_KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def _open_regular(path: str | bytes | os.PathLike, error: type[Exception], label: str, max_bytes: int) -> tuple[int, int]:
    """Open ``path`` read-only after checking it is a regular file of at most ``max_bytes``; (fd, size).

    ``stat`` comes first, so opening a FIFO or a device never happens; the open
    itself is non-blocking and followed by ``fstat``, so a file swapped for a
    FIFO between the two calls is still caught without blocking.
    """
    name = os.fspath(path)
    if ("\0" in name) if isinstance(name, str) else (b"\0" in name):
        raise error(f"{label}: path contains a NUL byte")
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise error(f"{label}: file is missing") from None
    except NotADirectoryError:
        raise error(f"{label}: file is missing (a parent is not a directory)") from None
    except (OSError, ValueError) as exc:
        raise error(f"{label}: cannot read ({_reason(exc)})") from None
    kind = _not_regular(info.st_mode)
    if kind:
        raise error(f"{label}: is {kind}, not a regular file")
    if info.st_size > max_bytes:
        raise error(f"{label}: is {info.st_size} bytes, over the limit of {max_bytes}")
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{label}: cannot read ({_reason(exc)})") from None
    try:
        info = os.fstat(fd)
        kind = _not_regular(info.st_mode)
        if kind:
            raise error(f"{label}: is {kind}, not a regular file")
        if info.st_size > max_bytes:
            raise error(f"{label}: is {info.st_size} bytes, over the limit of {max_bytes}")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return short(str(exc) or type(exc).__name__, 60).strip("'\"")


def _read_fd(fd: int, count: int, error: type[Exception], label: str) -> bytes:
    """Up to ``count`` bytes from ``fd`` (fewer only at end of file)."""
    parts, left = [], count
    while left > 0:
        try:
            chunk = os.read(fd, min(left, _CHUNK))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise error(f"{label}: not a regular file (read would block)") from None
            raise error(f"{label}: cannot read ({_reason(exc)})") from None
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_into(fd: int, view: memoryview, error: type[Exception], label: str) -> int:
    """Fill ``view`` from ``fd`` without an intermediate copy; the count read (short only at end of file)."""
    got = 0
    while got < len(view):
        try:
            count = os.readv(fd, [view[got : got + 64 * _CHUNK]])
        except OSError as exc:
            raise error(f"{label}: cannot read ({_reason(exc)})") from None
        if count == 0:
            break
        got += count
    return got


def read_bytes(path: str | bytes | os.PathLike, *, error: type[Exception], max_bytes: int, what: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Checks: no NUL in the path, the file exists and is regular (no directory,
    FIFO, device or socket: checked before opening, so nothing blocks), its
    size is within ``max_bytes``; at most ``max_bytes + 1`` bytes are read, so
    a file growing while it is read is refused rather than read forever.
    """
    label = _label(path, what)
    fd, _ = _open_regular(path, error, label, max_bytes)
    try:
        data = _read_fd(fd, max_bytes + 1, error, label)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise error(f"{label}: is over the limit of {max_bytes} bytes")
    return data


# --------------------------------------------------------------------------- JSON


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON text, ignoring brackets inside strings.

    Linear and non-recursive (string literals are blanked by a regex, then the
    running depth is a cumulative sum), so it is safe on any input; text that is
    not JSON gets some depth and is then refused by the parser.
    """
    stripped = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    brackets = stripped[np.isin(stripped, _BRACKETS)]
    if brackets.size == 0:
        return 0
    step = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def parse_json_text(
    text: bytes,
    *,
    error: type[Exception],
    where: str,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON bytes already read, with the same checks as :func:`read_json`; ``where`` prefixes messages.

    Checked: at most ``max_bytes``; strict UTF-8; nesting ≤ ``max_depth``
    (before parsing); integers of ≤ :data:`MAX_INT_DIGITS` digits; finite
    floats (``NaN``, ``Infinity`` and overflowing literals such as ``1e400``
    refused); no duplicate keys in an object (a second value would silently win).
    """
    where = display_path(where)
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    if len(text) > max_bytes:
        raise error(f"{where}: is {len(text)} bytes, over the limit of {max_bytes}")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 (byte 0x{text[exc.start]:02x} at offset {exc.start})") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{where}: JSON nested {depth} deep, over the limit of {max_depth}")

    def parse_int(literal: str) -> int:
        if len(literal.lstrip("-")) > MAX_INT_DIGITS:
            raise error(f"{where}: integer of {len(literal.lstrip('-'))} digits, over the limit of {MAX_INT_DIGITS}")
        return int(literal)

    def parse_float(literal: str) -> float:
        value = float(literal) if len(literal) <= MAX_FLOAT_CHARS else math.inf
        if not math.isfinite(value):
            raise error(f"{where}: number {short(literal, 40)} is out of the float range")
        return value

    def parse_constant(literal: str) -> float:
        raise error(f"{where}: {literal} is not a number JSON allows (only finite numbers are accepted)")

    def object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        record = dict(pairs)
        if len(record) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise error(f"{where}: duplicate key {short(key, 60)} in one object")
                seen.add(key)
        return record

    try:
        return json.loads(
            decoded, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant,
            object_pairs_hook=object_pairs,
        )
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # unreachable after the depth scan; kept so no traceback can ever escape
        raise error(f"{where}: JSON nested too deep") from None


def read_json(
    path: str | bytes | os.PathLike,
    *,
    error: type[Exception],
    what: str | None = None,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse a JSON file from an untrusted source; every failure is ``error("<file>: <problem>")``, one line.

    The file checks are :func:`read_bytes`'s (regular file, no NUL in the path,
    size ≤ ``max_bytes``), the content checks :func:`parse_json_text`'s
    (UTF-8, depth ≤ ``max_depth``, bounded integers, finite floats, unique
    keys). ``what`` (e.g. ``"config"``) is put before the path in messages.
    """
    data = read_bytes(path, error=error, max_bytes=max_bytes, what=what)
    return parse_json_text(data, error=error, where=_label(path, what), max_bytes=max_bytes, max_depth=max_depth)


# --------------------------------------------------------------------------- safetensors


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def safetensors_layout(
    header: Any, data_size: int, *, error: type[Exception], where: str
) -> list[tuple[str, str, tuple[int, ...], int, int]]:
    """Validate a parsed safetensors header against a data section of ``data_size`` bytes.

    Returns ``(name, dtype, shape, begin, end)`` per tensor, sorted by offset.
    Checked: the header is an object; ``__metadata__`` (optional) maps strings
    to strings; every other entry has exactly ``dtype`` (a known one),
    ``shape`` (≤ :data:`MAX_TENSOR_DIMS` non-negative ints, ≤
    :data:`MAX_TENSOR_ELEMENTS` elements) and ``data_offsets`` ``[begin, end]``
    with ``end - begin`` = elements × itemsize; the tensors tile the data
    section exactly — no overlap, no gap, nothing after the last — as the
    safetensors format requires, so a header that lies about any of them is
    caught before a byte of data is read.
    """
    if not isinstance(header, dict):
        raise error(f"{where}: safetensors header is {type(header).__name__}, not a JSON object")
    layout = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise error(f"{where}: __metadata__ {short(entry, 60)} is not an object of strings")
            continue
        tensor = f"tensor {short(name, 60)}"
        if not isinstance(entry, dict) or set(entry) != _TENSOR_KEYS:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise error(f"{where}: {tensor}: header entry {short(got, 60)} is not {{dtype, shape, data_offsets}}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
            problem = "has no NumPy type" if dtype in _UNSUPPORTED_DTYPES else "is not a known safetensors dtype"
            raise error(f"{where}: {tensor}: dtype {short(dtype, 40)} {problem}")
        if not isinstance(shape, list) or len(shape) > MAX_TENSOR_DIMS or not all(_is_count(n) for n in shape):
            raise error(f"{where}: {tensor}: shape {short(shape, 60)} is not a list of ≤ {MAX_TENSOR_DIMS} non-negative ints")
        count = math.prod(shape)
        if count > MAX_TENSOR_ELEMENTS:
            raise error(f"{where}: {tensor}: shape {short(shape, 60)} has {count:.3g} elements, over {MAX_TENSOR_ELEMENTS}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
            raise error(f"{where}: {tensor}: data_offsets {short(offsets, 60)} is not [begin, end]")
        begin, end = offsets
        nbytes = count * SAFETENSORS_DTYPES[dtype].itemsize
        if end < begin or end - begin != nbytes:
            raise error(f"{where}: {tensor}: data_offsets {short(offsets, 60)} do not hold {dtype} {tuple(shape)} ({nbytes} bytes)")
        if end > data_size:
            raise error(f"{where}: {tensor}: data_offsets end {end} is past the data section ({data_size} bytes)")
        layout.append((name, dtype, tuple(shape), begin, end))
    layout.sort(key=lambda item: (item[3], item[4]))
    position = 0
    for name, _, _, begin, end in layout:
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else f"leaves a gap of {begin - position} bytes"
            raise error(f"{where}: tensor {short(name, 60)}: data_offsets start {begin} {problem}")
        position = end
    if position != data_size:
        raise error(f"{where}: header accounts for {position} data bytes, the file holds {data_size} (truncated or padded)")
    return layout


def _to_array(raw: np.ndarray, dtype: str, error: type[Exception], where: str, name: str) -> np.ndarray:
    """A tensor as read (little-endian storage type) -> the NumPy array clearform uses."""
    if dtype == "BF16":  # bfloat16 is the top half of a float32: widening is exact
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if dtype == "BOOL":
        if raw.size and raw.max() > 1:
            raise error(f"{where}: tensor {short(name, 60)}: BOOL bytes other than 0 and 1")
        return raw.astype(np.bool_)
    return raw.astype(raw.dtype.newbyteorder("="), copy=False)


def read_safetensors(
    path: str | bytes | os.PathLike,
    *,
    error: type[Exception],
    sha256: str | None = None,
    max_bytes: int = MAX_SAFETENSORS_BYTES,
    source_dtypes: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, as NumPy arrays that own their memory.

    File checks as :func:`read_bytes` (regular file, size ≤ ``max_bytes``).
    Then, before any tensor is read: the 8-byte little-endian header length is
    ≤ :data:`MAX_HEADER_BYTES` and fits in the file; the header is JSON under
    :func:`parse_json_text`'s checks; :func:`safetensors_layout` accepts it and
    the file size is exactly 8 + header + data. With ``sha256`` the whole file
    is hashed first (so a changed file is reported as such) and again while it
    is read (so a change in between is caught too).

    BF16 comes back as float32 (exact: a bfloat16 is the top 16 bits of a
    float32), BOOL as bool, every other dtype as itself in native byte order.
    ``source_dtypes``, when given, is filled with each tensor's dtype in the file.
    """
    label = display_path(path)
    fd, size = _open_regular(path, error, label, max_bytes)
    try:
        digest = None
        if sha256 is not None:
            if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
                raise error(f"{label}: recorded SHA-256 {short(sha256, 40)} is not 64 hex digits")
            first, left = hashlib.sha256(), size + 1  # bounded even if the file grows meanwhile
            while left > 0 and (chunk := _read_fd(fd, min(left, _CHUNK), error, label)):
                first.update(chunk)
                left -= len(chunk)
            if first.hexdigest() != sha256.lower():
                raise error(f"{label}: SHA-256 does not match the recorded one (file changed or truncated)")
            os.lseek(fd, 0, os.SEEK_SET)
            digest = hashlib.sha256()
        tensors = _read_safetensors_fd(fd, size, error, label, digest, source_dtypes)
    finally:
        os.close(fd)
    if digest is not None and digest.hexdigest() != sha256.lower():
        raise error(f"{label}: SHA-256 does not match the recorded one (file changed while read)")
    return tensors


def _read_safetensors_fd(
    fd: int, size: int, error: type[Exception], label: str, digest: Any, source_dtypes: dict[str, str] | None
) -> dict[str, np.ndarray]:
    """The tensors of an open safetensors file of ``size`` bytes, read from its start (see read_safetensors)."""

    def read_exact(count: int) -> bytes:
        data = _read_fd(fd, count, error, label)
        if len(data) != count:
            raise error(f"{label}: not a readable safetensors file (truncated: {len(data)} of {count} bytes)")
        if digest is not None:
            digest.update(data)
        return data

    if size < 8:
        raise error(f"{label}: not a readable safetensors file ({size} bytes, shorter than the 8-byte header length)")
    (header_len,) = struct.unpack("<Q", read_exact(8))
    if header_len > MAX_HEADER_BYTES or header_len > size - 8:
        raise error(
            f"{label}: not a readable safetensors file (header length {header_len} is over "
            f"{min(MAX_HEADER_BYTES, size - 8)}, the most this file allows)"
        )
    header_bytes = read_exact(header_len)
    if not header_bytes.startswith(b"{"):
        raise error(f"{label}: not a readable safetensors file (header does not start with '{{')")
    header = parse_json_text(header_bytes, error=error, where=f"{label} header", max_bytes=MAX_HEADER_BYTES)
    layout = safetensors_layout(header, size - 8 - header_len, error=error, where=label)
    tensors: dict[str, np.ndarray] = {}
    for name, dtype, shape, begin, end in layout:
        raw = np.empty(end - begin, dtype=np.uint8)  # each tensor is read straight into its own buffer
        got = _read_into(fd, memoryview(raw), error, label)
        if got != raw.size:
            tensor = short(name, 60)
            raise error(f"{label}: not a readable safetensors file (truncated: tensor {tensor} has {got} of {raw.size} bytes)")
        if digest is not None:
            digest.update(memoryview(raw))
        tensors[name] = _to_array(raw.view(SAFETENSORS_DTYPES[dtype]).reshape(shape), dtype, error, label, name)
        if source_dtypes is not None:
            source_dtypes[name] = dtype
    if _read_fd(fd, 1, error, label):
        raise error(f"{label}: file grew while it was read")
    return {name: tensors[name] for name in header if name != "__metadata__"}  # in header order


# --------------------------------------------------------------------------- output folders


def check_path_arg(flag: str, value: str, *, error: type[Exception]) -> None:
    """Raise ``error`` for a path argument that no file system accepts (empty, or holding a NUL byte)."""
    if not value or "\0" in value:
        raise error(f"{flag}: {short(value)} is not a path (empty, or holds a NUL byte)")


def check_out_dir(flag: str, out: str, *, error: type[Exception], create: bool = True) -> Path:
    """The output folder ``out``, checked up front: not a file, not under a file, creatable and writable.

    With ``create`` the folder is made (parents too); without it a missing folder is left
    alone (``--resume`` reports it). Writability is tried with a temporary file, so a
    folder on a read-only file system or ``/proc`` fails here, on one line, before any work.
    """
    check_path_arg(flag, out, error=error)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise error(f"{flag}: {short(out)} is a file, not a folder")
    if not create and not path.is_dir():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise error(f"{flag}: cannot create folder {short(out)} (a file is in the way)") from None
    except NotADirectoryError:
        raise error(f"{flag}: cannot create folder {short(out)} (a parent is a file, not a folder)") from None
    except OSError as exc:
        raise error(f"{flag}: cannot create folder {short(out)} ({exc.strerror or type(exc).__name__})") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise error(f"{flag}: folder {short(out)} is not writable ({exc.strerror or type(exc).__name__})") from None
    return path
