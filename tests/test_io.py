"""reference.io: every class of bad file gives one clean line of the caller's error class, fast.

Each test names the input a hostile or careless user could hand clearform and
asserts the loader refuses it (or, for the edge that must still pass, accepts
it) with a one-line message that names the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from reference.config import ConfigError
from reference.io import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    json_depth,
    parse_json_text,
    read_bytes,
    read_json,
    read_safetensors,
    short,
)


class Refused(ValueError):
    """The error class the tests pass in: proves io raises the caller's class, not its own."""


def _refused(call, *args, match: str | None = None, **kwargs) -> str:
    """Run ``call``; it must raise Refused with a one-line message (containing ``match``); return the message."""
    with pytest.raises(Refused) as info:
        call(*args, error=Refused, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert len(message) < 400, message
    if match is not None:
        assert match in message, message
    return message


def _within(seconds: float, call, *args, **kwargs):
    """Run ``call`` in a daemon thread; fail (instead of hanging the suite) if it takes longer than ``seconds``."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = call(*args, **kwargs)
        except BaseException as exc:  # handed back to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call.__name__} still running after {seconds} s (a hang)"
    assert time.monotonic() - start < seconds
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _write(tmp_path: Path, data: bytes, name: str = "f.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- JSON content


def test_valid_json_round_trips_with_the_callers_error_class(tmp_path):
    record = {"model": {"d_model": 64, "ln_eps": 1e-5, "name": "é ✓", "list": [1, -2, 3.5, True, None]}}
    path = _write(tmp_path, json.dumps(record).encode())
    assert read_json(path, error=Refused) == record
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_json(_write(tmp_path, b"{", "bad.json"), error=ConfigError)


def test_invalid_utf8_is_refused_with_the_offset(tmp_path):
    path = _write(tmp_path, b'{"name": "caf\xe9"}')
    message = _refused(read_json, path, match="not UTF-8")
    assert str(path) in message and "0xe9" in message and "offset 13" in message


@pytest.mark.parametrize("opener", ["[", "{\"a\":"])
def test_ten_thousand_deep_nesting_is_refused_before_the_parser_recurses(tmp_path, opener):
    closer = "]" if opener == "[" else "}"
    text = (opener * 10_000 + "1" + closer * 10_000).encode()
    start = time.monotonic()
    _refused(read_json, _write(tmp_path, text), match="nested 10000 deep, over the limit of 64")
    assert time.monotonic() - start < 1.0


def test_depth_limit_is_exact_and_brackets_inside_strings_do_not_count():
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert json_depth(at_limit) == MAX_JSON_DEPTH
    assert parse_json_text(at_limit, error=Refused, where="x") is not None
    _refused(parse_json_text, b"[" + at_limit + b"]", where="x", match=f"nested {MAX_JSON_DEPTH + 1} deep")
    in_string = json.dumps({"s": "[{" * 5000 + '\\"[', "t": "]]"}).encode()
    assert json_depth(in_string) == 1
    assert parse_json_text(in_string, error=Refused, where="x")["t"] == "]]"


@pytest.mark.parametrize("digits", [MAX_INT_DIGITS + 1, 4_301, 100_000])
def test_long_integers_are_refused_before_int_conversion(tmp_path, digits):
    for sign in ("", "-"):
        path = _write(tmp_path, f'{{"steps": {sign}{"9" * digits}}}'.encode())
        _refused(read_json, path, match=f"integer of {digits} digits, over the limit of {MAX_INT_DIGITS}")
    assert parse_json_text(b"-" + b"9" * MAX_INT_DIGITS, error=Refused, where="x") == -int("9" * MAX_INT_DIGITS)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_refused(literal):
    _refused(parse_json_text, f'{{"ln_eps": {literal}}}'.encode(), where="cfg.json", match=f"cfg.json: {literal} is not a number")


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" * 400 + ".0"])
def test_floats_that_overflow_to_infinity_are_refused(literal):
    _refused(parse_json_text, f"[{literal}]".encode(), where="x", match="out of the float range")
    assert parse_json_text(b"[1e308, 5e-324, -0.0]", error=Refused, where="x") == [1e308, 5e-324, -0.0]


def test_duplicate_keys_are_refused_at_any_depth():
    _refused(parse_json_text, b'{"n_heads": 2, "n_heads": 4}', where="x", match="duplicate key 'n_heads'")
    _refused(parse_json_text, b'{"a": [{"k": 1, "k": 1}]}', where="x", match="duplicate key 'k'")


def test_not_json_and_truncated_json_name_the_position():
    _refused(parse_json_text, b'{"a": 1', where="x", match="not valid JSON")
    _refused(parse_json_text, b"", where="x", match="line 1 column 1")


# --------------------------------------------------------------------------- the file itself


@pytest.mark.parametrize("path", ["conf\0ig.json", b"conf\0ig.json"])
def test_a_nul_in_the_path_is_refused(path):
    message = _refused(read_json, path, match="path contains a NUL byte")
    assert "\0" not in message and "\\x00" in message


def test_missing_file_and_a_file_as_a_folder_are_refused(tmp_path):
    _refused(read_json, tmp_path / "absent.json", match="file is missing")
    _refused(read_json, _write(tmp_path, b"{}") / "under.json", match="a parent is not a directory")


def test_a_directory_is_refused(tmp_path):
    _refused(read_json, tmp_path, match="is a directory, not a regular file")
    _refused(read_safetensors, tmp_path, match="is a directory")
    _refused(read_bytes, tmp_path, max_bytes=10, match="is a directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block forever
    for reader, kwargs in ((read_json, {}), (read_safetensors, {}), (read_bytes, {"max_bytes": 10})):
        with pytest.raises(Refused, match="is a FIFO"):
            _within(5.0, reader, fifo, error=Refused, **kwargs)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_without_reading_it():
    for reader, kwargs in ((read_json, {}), (read_safetensors, {}), (read_bytes, {"max_bytes": 10})):
        with pytest.raises(Refused, match="is a character device"):
            _within(5.0, reader, "/dev/zero", error=Refused, **kwargs)


def test_size_limit_is_exact(tmp_path):
    path = _write(tmp_path, b"[" + b" " * 98 + b"]")  # 100 bytes
    assert read_json(path, error=Refused, max_bytes=100) == []
    _refused(read_json, path, max_bytes=99, match="is 100 bytes, over the limit of 99")
    assert read_bytes(path, error=Refused, max_bytes=100) == path.read_bytes()
    _refused(read_bytes, path, max_bytes=99, match="over the limit of 99")


def test_default_json_size_cap_refuses_a_huge_file_without_parsing_it(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as handle:  # sparse: 17 MiB of NULs that cost no disk
        handle.truncate(17 * 2**20)
    _refused(read_json, path, match="over the limit of 16777216")


def test_messages_stay_one_line_for_hostile_paths_and_name_the_role(tmp_path):
    odd = tmp_path / "line\nbreak.json"
    odd.write_bytes(b"\xff")
    message = _refused(read_json, odd, match="not UTF-8")
    assert "line\\x0abreak.json" in message
    _refused(read_json, tmp_path / "nope.json", what="config", match=f"config {tmp_path / 'nope.json'}: file is missing")


# --------------------------------------------------------------------------- short()


def test_short_cuts_escapes_and_survives_values_repr_cannot_print():
    assert short("x" * 10**7).endswith("…") and len(short("x" * 10**7)) == 80
    assert short("a\nb") == "'a\\nb'" and "\n" not in short(["a\nb"] * 3)
    assert short(10**5000) == "<int of about 5001 digits>"
    assert short(1.5) == "1.5" and short(None) == "None" and short("llama") == "'llama'"
    assert len(short({"k" * 200: list(range(1000))}, limit=40)) <= 40

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short(Broken()).startswith("<Broken")


# --------------------------------------------------------------------------- safetensors


def _safetensors(entries: dict, data: bytes, metadata: dict | None = None, pad: bool = True) -> bytes:
    """A safetensors file written by hand, so the header can lie."""
    header = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def _good_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "f64": rng.standard_normal((2, 3)), "f32": rng.standard_normal(5).astype(np.float32),
        "f16": rng.standard_normal((3, 1)).astype(np.float16), "i64": np.arange(-3, 3, dtype=np.int64),
        "i32": np.array([[1, -2]], np.int32), "i16": np.array([7], np.int16), "i8": np.array([-8, 9], np.int8),
        "u8": np.array([0, 255], np.uint8), "bool": np.array([True, False, True]), "empty": np.zeros((0, 4), np.float32),
        "scalar": np.array(2.5, np.float32),
    }


def test_safetensors_round_trip_matches_the_safetensors_library(tmp_path):
    data = st_save(_good_tensors(), metadata={"format": "pt"})
    path = _write(tmp_path, data, "w.safetensors")
    got = read_safetensors(path, error=Refused, sha256=hashlib.sha256(data).hexdigest())
    want = st_load(data)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape and np.array_equal(got[name], value)
    # Arrays are private copies: writable, sharing no memory, unchanged when the file is overwritten.
    arrays = list(got.values())
    assert all(a.flags.writeable for a in arrays)
    assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])
    path.write_bytes(bytes(len(data)))
    assert all(np.array_equal(got[name], value) for name, value in want.items())


def test_bf16_widens_exactly_to_known_float32_values(tmp_path):
    # bfloat16 bit patterns and the float32 values they are the top halves of.
    bits = np.array([0x3FC0, 0xC049, 0x0000, 0x8000, 0x7F80, 0x3F80, 0x4049], "<u2")
    want = np.array([1.5, -3.140625, 0.0, -0.0, np.inf, 1.0, 3.140625], np.float32)
    entries = {"w": {"dtype": "BF16", "shape": [7], "data_offsets": [0, 14]}}
    sources: dict[str, str] = {}
    got = read_safetensors(_write(tmp_path, _safetensors(entries, bits.tobytes()), "b.safetensors"),
                           error=Refused, source_dtypes=sources)["w"]
    assert got.dtype == np.float32 and sources == {"w": "BF16"}
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))  # bit-exact, signed zero included
    # and the other way: any float32 whose low 16 bits are zero survives a BF16 round trip exactly
    values = (np.random.default_rng(1).standard_normal(64).astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
    data = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    entries = {"v": {"dtype": "BF16", "shape": [8, 8], "data_offsets": [0, 128]}}
    back = read_safetensors(_write(tmp_path, _safetensors(entries, data), "c.safetensors"), error=Refused)["v"]
    assert np.array_equal(back, values.reshape(8, 8))


def test_sha256_mismatch_and_malformed_hash_are_refused(tmp_path):
    data = st_save({"a": np.ones(3, np.float32)})
    path = _write(tmp_path, data, "w.safetensors")
    _refused(read_safetensors, path, sha256="0" * 64, match="SHA-256 does not match")
    _refused(read_safetensors, path, sha256=["not", "a", "hash"], match="is not 64 hex digits")
    assert read_safetensors(path, error=Refused, sha256=hashlib.sha256(data).hexdigest().upper())["a"].sum() == 3


def test_every_truncation_and_any_appended_byte_is_refused(tmp_path):
    data = st_save({"a": np.arange(4, dtype=np.float32), "b": np.ones((2, 2), np.float64)})
    path = tmp_path / "w.safetensors"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        _refused(read_safetensors, path)
    path.write_bytes(data + b"\0")
    _refused(read_safetensors, path, match="the file holds")


F32_ENTRY = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
HEADER_LIES = {
    "shape bigger than its bytes": ({"w": F32_ENTRY | {"shape": [2, 3]}}, "do not hold F32 (2, 3)"),
    "dtype wider than its bytes": ({"w": F32_ENTRY | {"dtype": "F64"}}, "do not hold F64"),
    "offsets reversed": ({"w": F32_ENTRY | {"data_offsets": [16, 0]}}, "do not hold"),
    "offsets past the data": ({"w": F32_ENTRY | {"data_offsets": [8, 24]}}, "past the data section"),
    "offsets overlap": (
        {"w": F32_ENTRY, "v": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, "overlaps the previous tensor"
    ),
    "a gap": ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, "leaves a gap of 8 bytes"),
    "fewer bytes claimed than held": ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, "the file holds 16"),
    "unknown dtype": ({"w": F32_ENTRY | {"dtype": "F7"}}, "dtype 'F7' is not a known safetensors dtype"),
    "dtype NumPy lacks": ({"w": F32_ENTRY | {"dtype": "F8_E4M3", "shape": [4, 4]}}, "'F8_E4M3' has no NumPy type"),
    "dtype not a string": ({"w": F32_ENTRY | {"dtype": 4}}, "dtype 4 is not"),
    "negative dimension": ({"w": F32_ENTRY | {"shape": [-2, -2]}}, "is not a list of"),
    "float dimension": ({"w": F32_ENTRY | {"shape": [2.0, 2]}}, "is not a list of"),
    "bool dimension": ({"w": F32_ENTRY | {"shape": [True, 4]}}, "is not a list of"),
    "too many dimensions": ({"w": F32_ENTRY | {"shape": [1] * 17 + [4]}}, "is not a list of ≤ 16"),
    "astronomical shape": ({"w": F32_ENTRY | {"shape": [2**40, 2**40]}}, "elements, over"),
    "offsets a dict": ({"w": F32_ENTRY | {"data_offsets": {"a": 0}}}, "is not [begin, end]"),
    "three offsets": ({"w": F32_ENTRY | {"data_offsets": [0, 8, 16]}}, "is not [begin, end]"),
    "extra entry key": ({"w": F32_ENTRY | {"sha": "x"}}, "is not {dtype, shape, data_offsets}"),
    "entry a list": ({"w": [1, 2]}, "header entry 'list'"),
    "metadata not strings": ({"w": F32_ENTRY, "__metadata__": {"format": 1}}, "__metadata__ {'format': 1}"),
    "metadata a list": ({"w": F32_ENTRY, "__metadata__": ["pt"]}, "is not an object of strings"),
}


@pytest.mark.parametrize("kind", sorted(HEADER_LIES))
def test_a_header_that_lies_is_refused_before_data_is_read(tmp_path, kind):
    entries, message = HEADER_LIES[kind]
    path = _write(tmp_path, _safetensors(entries, bytes(16)), "w.safetensors")
    _refused(read_safetensors, path, match=message)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "shorter than the 8-byte header length"),
        (struct.pack("<Q", 2**64 - 1) + b"{}", "header length 18446744073709551615 is over"),
        (struct.pack("<Q", 100) + b"{}" + bytes(20), "is over 22"),
        (struct.pack("<Q", 4) + b"[1] ", "does not start with '{'"),
        (struct.pack("<Q", 2) + b"{]", "not valid JSON"),
        (struct.pack("<Q", 8) + b'{"a":NaN', "NaN is not a number"),
        (struct.pack("<Q", 2) + b"\xff\xfe", "does not start with '{'"),
        (struct.pack("<Q", 4) + b"{\"\xff\"", "not UTF-8"),
        (struct.pack("<Q", 200) + b"{" * 200, "nested 200 deep"),
        (b"\x80\x04\x95 this is a pickle, not safetensors", "not a readable safetensors file"),
    ],
)
def test_a_malformed_header_is_refused(tmp_path, raw, message):
    _refused(read_safetensors, _write(tmp_path, raw, "w.safetensors"), match=message)


def test_bool_bytes_other_than_zero_and_one_are_refused(tmp_path):
    entries = {"m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}}
    assert read_safetensors(_write(tmp_path, _safetensors(entries, b"\0\1\1"), "a.safetensors"), error=Refused)["m"].tolist() == [
        False, True, True,
    ]
    _refused(read_safetensors, _write(tmp_path, _safetensors(entries, b"\0\2\1"), "b.safetensors"), match="BOOL bytes")


def test_duplicate_tensor_names_in_a_header_are_refused(tmp_path):
    text = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    _refused(read_safetensors, _write(tmp_path, struct.pack("<Q", len(text)) + text + bytes(8), "w.safetensors"),
             match="duplicate key 'w'")


def test_safetensors_size_cap_is_checked_before_reading(tmp_path):
    data = st_save({"a": np.ones(100, np.float32)})
    path = _write(tmp_path, data, "w.safetensors")
    _refused(read_safetensors, path, max_bytes=len(data) - 1, match=f"is {len(data)} bytes, over the limit")
    assert read_safetensors(path, error=Refused, max_bytes=len(data))["a"].shape == (100,)
