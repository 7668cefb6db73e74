"""Verilog in which a layer's PEs are one module, written once and instanced by every PE.

Amaranth's backend writes one Verilog module per submodule *instance*, each with only the
ports its parent happens to use: a 10-PE layer came out as ten copies of a 75 kB PE
(``\\ssdfa_layer.pe_0`` .. ``pe_9``), PE 0's with one port more than the others'. ``convert``
writes a design instead with every PE of a layer as an instance of one module, that of the
standalone ``neuron_pe`` top (every port of its signature), written once after the design's
own modules::

    module ssdfa_layer (...);                 // the top, as before
      \\ssdfa_layer.neuron_pe  pe_0 (...);
      ...
      \\ssdfa_layer.neuron_pe  pe_9 (...);
    module \\ssdfa_layer.router (...);
    module \\ssdfa_layer.neuron_pe (...);     // once

In a network each layer's PEs get theirs (``\\ssdfa_network.layer0.neuron_pe``: the layers'
PEs differ in fan-in, neurons and activation). The names start with the top's, as Amaranth's
own submodule names do, so the files of several tops can be compiled together. PEs whose
weight memories start with different contents (a design generated with trained weights) are
different modules, one per PE (``\\ssdfa_network.layer0.neuron_pe_3``).

A build system that converts the design itself (amaranth-boards' ``platform.prepare``, the
board builds) takes ``elaborate``'s fragment, with each PE module's Verilog as a file of its own.

Only the Verilog changes: Amaranth's simulator elaborates the PEs as ordinary submodules
(outside ``convert`` a layer adds its NeuronPE objects), and the instanced module is the same
elaborated logic, so every simulation of the generated Verilog checks this path bit for bit.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from amaranth.hdl import ClockSignal, Fragment, Instance, ResetSignal
from amaranth.lib import wiring

from .signatures import signature_only, verilog_ports

__all__ = ["convert", "elaborate", "pe_submodule"]


class _SharedModules:
    """The PE modules one conversion instances, by module name, in the order first used."""

    def __init__(self, top_name: str, top):
        self.top_name = top_name
        self.top = top
        self.modules: dict[str, wiring.Component] = {}
        self._prefixes: dict[int, str] = {}  # id(layer) -> its modules' prefix

    def module_name(self, layer, index: int, own_contents: bool) -> str:
        prefix = self._prefixes.get(id(layer))
        if prefix is None:
            prefix = self.top_name if layer is self.top else f"{self.top_name}.layer{layer.config.index}"
            taken = set(self._prefixes.values())
            # Two layers of one index (a design built by hand) must not share a module.
            prefix = next(p for p in (prefix, *(f"{prefix}_{n}" for n in range(1, len(taken) + 2)))
                          if p not in taken)
            self._prefixes[id(layer)] = prefix
        return f"{prefix}.neuron_pe" + (f"_{index}" if own_contents else "")


_ACTIVE: ContextVar[_SharedModules | None] = ContextVar("ssdfa_shared_modules", default=None)


def _port_map(component: wiring.Component) -> list[tuple[str, str, object]]:
    """Instance ports for ``component``: its signature's, named as its own module's, plus the
    clock and reset."""
    ports = [("i", "clk", ClockSignal()), ("i", "rst", ResetSignal())]
    return ports + [("i" if is_input else "o", name, value) for name, _, is_input, value in verilog_ports(component)]


def pe_submodule(layer, pe, index: int, *, own_contents: bool = False):
    """What ``layer`` adds as its PE ``index``: ``pe`` itself, or, inside ``convert``, an
    instance of the PE's shared module (connected to ``pe``'s own port signals, so the layer's
    logic around it is the same either way). ``own_contents``: the PE's memories start with
    contents of their own (trained weights), so it gets a module of its own."""
    shared = _ACTIVE.get()
    if shared is None:
        return pe
    name = shared.module_name(layer, index, own_contents)
    if name in shared.modules:
        signature_only(pe)  # its logic is elaborated once, as PE `shared.modules[name]`'s module
    else:
        shared.modules[name] = pe
    return Instance(name, *_port_map(pe))


@contextmanager
def _sharing(top_name: str, top):
    token = _ACTIVE.set(_SharedModules(top_name, top))
    try:
        yield _ACTIVE.get()
    finally:
        _ACTIVE.reset(token)


def convert(component, name: str) -> str:
    """The Verilog of ``component`` as module ``name``, without source locations, each layer's
    PEs instancing one module written after the design's own (module docstring)."""
    from amaranth.back import verilog

    with _sharing(name, component) as shared:
        text = verilog.convert(component, name=name, emit_src=False)
    return text + "".join(_module_verilog(shared).values())


def elaborate(component, name: str, platform) -> tuple[Fragment, dict[str, str]]:
    """``component`` elaborated for ``platform`` as design ``name``, each layer's PEs instancing
    one module, and the Verilog of those modules by module name (module docstring). For a build
    system that converts the design itself (amaranth-boards' ``platform.prepare`` takes the
    fragment, and the modules as files of its own): its netlist, like ``convert``'s, holds each
    PE once."""
    with _sharing(name, component) as shared:
        fragment = Fragment.get(component, platform)
    return fragment, _module_verilog(shared)


def _module_verilog(shared: _SharedModules) -> dict[str, str]:
    """The Verilog of each PE module a conversion instanced, by module name, in order of first use."""
    from amaranth.back import verilog

    return {module_name: verilog.convert(pe, name=module_name, emit_src=False)
            for module_name, pe in shared.modules.items()}
