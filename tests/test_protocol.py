"""stylecore.protocol: the facts the plug-in, the worker and the CLI share, and the one JSON-lines reader."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading

import pytest

from stylecore.protocol import framing, messages, option_table
from stylecore.protocol.errors import BadRequest
from stylecore.protocol.framing import MessageReader, write_message

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('numpy', 'torch', 'torchvision', 'PIL'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_every_protocol_module_imports_without_numpy_or_torch():
    """What GIMP's own Python imports, run with numpy and torch blocked (the static rule is tests/test_architecture.py)."""
    code = BLOCKER + (
        "import importlib, pkgutil, stylecore.protocol as p; "
        "[importlib.import_module('stylecore.protocol.' + m.name) for m in pkgutil.iter_modules(p.__path__)]; "
        "import stylecore.protocol.messages as c, stylecore; print(c.PROTOCOL, stylecore.__version__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(messages.PROTOCOL), messages.VERSION]


def test_the_package_still_exports_its_api_lazily():
    import stylecore

    assert stylecore.Stylizer.__name__ == "Stylizer" and callable(stylecore.stylize)
    assert set(stylecore.__all__) <= set(dir(stylecore))
    with pytest.raises(AttributeError):
        stylecore.nothing_like_this  # noqa: B018


def good_request(**extra):
    req = {"op": "stylize", "id": "r1", "content": "/t/c.npy", "styles": [{"path": "/s/a.jpg"}], "output": "/t/o.npy"}
    req.update(extra)
    return req


def test_builder_and_parser_agree():
    obj, payload = messages.build_request(
        "r1", "/t/c.npy", [("/s/a.jpg", 0.75)], {"strength": 55, "seamless": True}, "/t/o.npy", {"every": 3, "dir": "/t"}
    )
    assert payload is None and json.loads(json.dumps(obj)) == obj
    req = messages.parse_request(obj)
    assert req == messages.Request(
        "r1", "/t/c.npy", (("/s/a.jpg", 0.75),), "/t/o.npy", {"strength": 55.0, "seamless": True}, 3, "/t"
    )
    assert messages.cancel_request("r1") == {"op": "cancel", "id": "r1"}


@pytest.mark.parametrize(
    "options,words",
    [
        ({"seamless": "false"}, "seamless 'false' is not true or false"),
        ({"preserve_colors": "no"}, "preserve_colors 'no' is not true or false"),
        ({"seed": True}, "seed True is not a whole number"),
        ({"seed": 2**70}, "outside 0..2"),
        ({"seed": -1}, "outside 0..2"),
        ({"working_size": 10**30}, "working_size 1000000000000000000000000000000 is outside 64..8192"),
        ({"working_size": 300.5}, "is not a whole number"),
        ({"strength": "70"}, "is not a number"),
        ({"strength": 1e400}, "is not a number"),
        ({"preset": "fast"}, "preset 'fast' unknown; use one of instant, draft, balanced, best"),
        ({"device": "gpu"}, "device 'gpu' unknown"),
        ({"precision": None}, "precision must not be null"),
        ({"strenght": 50}, "unknown option(s) strenght"),
    ],
)
def test_options_are_checked_for_their_json_types_and_ranges(options, words):
    with pytest.raises(BadRequest) as caught:
        option_table.check_options(options)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_every_option_accepts_its_default_and_the_devices_offered():
    assert option_table.check_options(option_table.defaults()) == option_table.defaults()
    for name, _ in option_table.DEVICES:
        option_table.check_options({"device": name})
    option_table.check_options({"device": "cuda:1", "working_size": None, "tv_weight": 0})
    assert option_table.option("strength").default == 70 and option_table.option("preserve_colors").flag == "--preserve-colors"
    assert {o.name for o in option_table.RUN_OPTIONS} | {o.name for o in option_table.ENGINE_OPTIONS} == {
        o.name for o in option_table.OPTIONS
    }


@pytest.mark.parametrize(
    "change,words",
    [
        ({"content": "/t/c\x00.npy"}, "'content' holds a NUL character"),
        ({"output": "/t/\ud800.npy"}, "'output' holds characters no file name can hold"),
        ({"styles": [{"path": "/s/\udfff"}]}, "'path' holds characters"),
        ({"styles": [{"path": "/s/a.jpg", "weight": True}]}, "style weight True"),
        ({"styles": [{"path": "/s/a.jpg", "weight": -1}]}, "style weight -1"),
        ({"styles": []}, "'styles' must not be empty"),
        ({"id": ""}, "'id' must be a non-empty string"),
        ({"images": {"every": True, "dir": "/t"}}, "'every' must be"),
        ({"options": []}, "'options' must be an object"),
    ],
)
def test_requests_with_unusable_fields_are_refused_in_one_line(change, words):
    with pytest.raises(BadRequest) as caught:
        messages.parse_request(good_request(**change))
    assert words in str(caught.value)


def test_reader_splits_lines_and_payloads_whatever_the_chunks():
    stream = io.BytesIO()
    write_message(stream, {"event": "a"})
    write_message(stream, {"event": "pixels", "width": 2}, b"\n\x00\xff{}\n")
    write_message(stream, {"event": "b", "loss": float("nan")})
    data = stream.getvalue()
    read_fd, write_fd = os.pipe()

    def trickle() -> None:  # one byte at a time: no message may depend on how the pipe splits it
        for i in range(len(data)):
            os.write(write_fd, data[i : i + 1])
        os.close(write_fd)

    threading.Thread(target=trickle).start()
    reader = MessageReader(read_fd)
    first, second, third = reader.read(), reader.read(), reader.read()
    assert reader.read() is None and reader.read() is None
    os.close(read_fd)
    assert first == framing.Message({"event": "a"})
    assert second == framing.Message({"event": "pixels", "width": 2, "bytes": 6}, b"\n\x00\xff{}\n")
    assert third.obj == {"event": "b", "loss": None}


def test_reader_refuses_or_skips_junk_and_goes_on():
    data = b'stray print\n[1]\n\n{"a": 1}\n{"bytes": "x"}\n{"b": 2}\n{"bytes": 10}\nabc'
    strict = MessageReader(io.BytesIO(data))
    with pytest.raises(BadRequest, match="not a JSON object"):
        strict.read()
    with pytest.raises(BadRequest, match="not a JSON object"):
        strict.read()
    assert strict.read().obj == {"a": 1}
    with pytest.raises(BadRequest, match="'bytes'"):
        strict.read()
    assert strict.read().obj == {"b": 2}
    with pytest.raises(BadRequest, match="7 bytes short"):
        strict.read()
    assert strict.read() is None
    lenient = MessageReader(io.BytesIO(b'noise\n{"a": 1}\n'), skip_junk=True)
    assert lenient.read().obj == {"a": 1} and lenient.read() is None


def test_reader_refuses_an_absurd_payload_and_reads_on():
    data = b'{"bytes": 1000000000000000}\n{"ok": 1}\n[' + b"[" * 100000 + b'\n{"ok": 2}\n'
    reader = MessageReader(io.BytesIO(data))
    with pytest.raises(BadRequest, match="over the .* byte limit"):
        reader.read()
    assert reader.read().obj == {"ok": 1}
    with pytest.raises(BadRequest, match="RecursionError"):  # nesting deeper than the parser goes
        reader.read()
    assert reader.read().obj == {"ok": 2}


def test_reader_refuses_an_endless_line_without_holding_it():
    big = b"x" * (framing.MAX_LINE * 3) + b'\n{"ok": true}\n'
    reader = MessageReader(io.BytesIO(big))
    with pytest.raises(BadRequest, match="byte limit"):
        reader.read()
    assert reader.read().obj == {"ok": True} and len(reader.buffer) == 0


def test_text_streams_get_the_same_bytes():
    text = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    write_message(text, {"path": "/t/\u00e9.png"})
    assert text.buffer.getvalue() == b'{"path": "/t/\\u00e9.png"}\n'


def test_first_instant_is_carried_and_needs_the_images_folder():
    obj, _ = messages.build_request(
        "r1", "/t/c.npy", [("/s/a.jpg", 1.0)], {}, "/t/o.npy", {"every": 2, "dir": "/t"}, first="instant"
    )
    assert obj["first"] == "instant" and messages.parse_request(obj).first == messages.FIRST_INSTANT
    assert "first" not in messages.build_request("r1", "/t/c.npy", [("/s/a.jpg", 1.0)], {}, "/t/o.npy")[0]
    with pytest.raises(BadRequest, match="'first' needs 'images'"):
        messages.parse_request(good_request(first="instant"))
    with pytest.raises(BadRequest, match="'first' 'draft' unknown; use \"instant\""):
        messages.parse_request(good_request(first="draft", images={"every": 1, "dir": "/t"}))


def test_a_refused_payload_is_skipped_exactly_and_an_untrusted_one_resynchronises():
    """The framing's recovery (docs/worker-protocol.md): skipped to the byte, or read on to the next JSON object line,
    one glued to the tail of a payload shorter than declared included."""
    ghost = b'\n{"ghost": 1}\n' + bytes(framing.CHUNK * 3)  # a payload that holds lines, longer than one read
    data = (
        framing.encode_message({"a": 1}, ghost)
        + b'{"b": 2}\n'
        + b'{"c": 3, "bytes": 1000000000}\n'
        + b"\x00\x01\n{not json\n\x02\x03"
        + b'{"d": {"e": 4}}\n'
    )
    reader = MessageReader(io.BytesIO(data))
    obj, size = reader.read_header()
    assert obj == {"a": 1, "bytes": len(ghost)}
    reader.skip_payload(size)
    assert reader.read() == framing.Message({"b": 2})
    assert reader.read_header() == ({"c": 3, "bytes": 10**9}, 10**9)
    reader.resync()  # 1 GB declared, 9 bytes sent: never waited for
    assert reader.read() == framing.Message({"d": {"e": 4}}) and reader.read() is None
