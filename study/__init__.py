"""Quantisation studies: grids of independent training runs of the reference model.

- ``spec``      reads and validates a study specification (TOML) and expands it into cells.
- ``cells``     a cell's canonical configuration and the SHA-256 key that names it.
- ``runner``    ``run_cell``: one training run of the reference model, as a dictionary.
- ``database``  the SQLite results file (one row per cell, written as results arrive).
- ``engine``    runs the pending cells of a study on a Dask cluster.
- ``leases``    lease owners and the heartbeat: runs sharing a database run each cell once.
- ``records``   finished cells as flat records, grouped over seeds.
- ``report``    CSV, Markdown and PNG summaries of a results file; ``plots``, ``area`` and
                ``chance`` (chance level) help it.
- ``redraw``    rewrites a committed report from its own ``cells.csv`` and ``area.csv``.

This package sits above ``ssdfa.model``: the model stays pure NumPy, and Dask and matplotlib
are imported only here, inside the functions that need them.
"""
