"""docs/rtl.md "Driving the tops": its tables are what the code generates, every port it names
is a port of that top's generated Verilog, and the reset it documents is the Verilog's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssdfa.model.neuron_ops import ArithmeticConfig
from ssdfa.rtl import interface_doc
from ssdfa.rtl.network import NETWORK_TOP, generate_network, network_layer_configs
from ssdfa.rtl.verilog import generate

PAGE = Path(__file__).resolve().parents[1] / "docs" / "rtl.md"
#: ``input [6:0] host__addr;`` or ``output busy;``: a top-level port declaration.
DECLARATION = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?(\\?[\w$]+)\s*;", re.M)


@pytest.fixture(scope="module")
def verilog(tmp_path_factory) -> dict[str, str]:
    """Every top's generated Verilog, from the configurations the page's tables use."""
    out = tmp_path_factory.mktemp("verilog")
    paths = generate(interface_doc.EXAMPLE_LAYER, out)
    paths.append(generate_network(network_layer_configs(interface_doc.EXAMPLE_NETWORK, ArithmeticConfig()), out))
    return {path.stem: path.read_text() for path in paths}


def top_module(text: str, name: str) -> str:
    """The text of module ``name`` (the top), without the submodules the file also holds."""
    start = re.search(rf"^module {name}\(", text, re.M).start()
    return text[start:text.index("\nendmodule", start)]


def verilog_ports(text: str, name: str) -> dict[str, tuple[str, int]]:
    return {
        port: ("in" if kind == "input" else "out", int(high) + 1 if high else 1)
        for kind, high, port in DECLARATION.findall(top_module(text, name))
    }


def documented_ports(page: str) -> dict[str, dict[str, tuple[str, int]]]:
    """top -> port -> (direction, bits), from the "Ports" tables of the page."""
    tops: dict[str, dict[str, tuple[str, int]]] = {}
    current = None
    for line in page.split("#### Ports", 1)[1].splitlines():
        heading = re.fullmatch(r"`(\w+)`:", line)
        if heading:
            current = tops.setdefault(heading.group(1), {})
        row = re.fullmatch(r"\| `(\w+)` \| (in|out) \| (\d+) \| .* \|", line)
        if row and current is not None:
            current[row.group(1)] = (row.group(2), int(row.group(3)))
    return tops


def test_the_page_holds_the_tables_the_code_generates():
    page = PAGE.read_text(encoding="utf-8")
    assert interface_doc.generated_part(page) == interface_doc.tables(), (
        "docs/rtl.md is out of date: run python -m ssdfa.rtl.interface_doc --write docs/rtl.md"
    )


def test_every_documented_port_is_a_port_of_its_tops_verilog(verilog):
    documented = documented_ports(PAGE.read_text(encoding="utf-8"))
    assert sorted(documented) == sorted(["neuron_pe", "error_router", "ssdfa_layer", NETWORK_TOP])
    for top, ports in documented.items():
        actual = verilog_ports(verilog[top], top)
        assert ports == actual, f"{top}: documented {sorted(set(ports) ^ set(actual))} differ from the Verilog"


def test_every_documented_stream_payload_is_a_port_of_its_top(verilog):
    page = PAGE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `([\w<>]+)` \| (in|out) \| .* \| (.*) \|$", page, re.M)
    assert len(rows) >= 14
    for top, port, direction, packing in rows:
        declared = verilog_ports(verilog[top], top)[port.replace("<p>", "0")]
        assert declared[0] == direction
        high = max(int(h) for h in re.findall(r"\[(\d+):\d+\]", packing))
        assert declared[1] == high + 1, f"{top}.{port}: packing {packing} is not {declared[1]} bits"


def test_reset_is_synchronous_and_active_high_as_documented(verilog):
    for top, text in verilog.items():
        assert verilog_ports(text, top)["rst"] == ("in", 1) and verilog_ports(text, top)["clk"] == ("in", 1)
        assert not re.search(r"(posedge|negedge)\s+rst\b", text), top
        assert set(re.findall(r"always @\(([^)]*)\)", text)) == {"posedge clk"}, top
        for line in text.splitlines():
            if re.search(r"\brst\b", line) and not line.lstrip().startswith("module "):
                # Declarations, instance connections, and the reset value chosen when rst is high.
                assert re.search(r"(input rst;|wire rst;|\.rst\(rst\)|= rst \?|if \(rst\) begin)", line), (top, line)


def test_a_code_without_a_meaning_stops_the_generator(monkeypatch):
    from ssdfa.rtl.layer import LayerSpace

    trimmed = {name: text for name, text in interface_doc.CODES[LayerSpace].items() if name != "INDEX"}
    monkeypatch.setitem(interface_doc.CODES, LayerSpace, trimmed)
    with pytest.raises(ValueError, match=r"CODES\[LayerSpace\]"):
        interface_doc.tables()
