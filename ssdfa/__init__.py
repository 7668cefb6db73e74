"""ssdfa: fixed-point sparse direct feedback alignment, from reference model to RTL.

The import namespace maps onto the repository's top-level folders:

- ``ssdfa.model``  (model/)  NumPy reference model; defines the arithmetic bit for bit.
- ``ssdfa.golden`` (golden/) golden-vector format and the committed canonical sets.
- ``ssdfa.rtl``    (rtl/)    Amaranth components that implement the arithmetic contract.
- ``ssdfa.sim``    (sim/)    cocotb testbenches and the simulator runner helper.
- ``ssdfa.study``  (study/)  quantization studies on Dask with a resumable SQLite store.
- ``ssdfa.cli``             the ``ssdfa`` command.
"""

__version__ = "0.1.0"
