"""Reproducible ``.npz`` archives and array checksums, shared by every file format of ssdfa.

Golden sets (golden/format.py) and saved networks (model/weight_file.py) store integer or
float arrays as ``<name>.npy`` members of an uncompressed zip with a fixed timestamp, so that
the same arrays always give the same bytes, and record the SHA-256 of each array's data.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ["ZIP_DATE_TIME", "array_sha256", "npz_bytes"]

#: Every zip member carries this timestamp (the earliest a zip can hold), so output is reproducible.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def array_sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of an array's data: its row-major bytes in its own (little-endian) dtype."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.create_system = 3  # Unix, whatever the host
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED
    return info


def npz_bytes(arrays: Mapping[str, np.ndarray], extra: Mapping[str, bytes] | None = None) -> bytes:
    """The bytes of an npz archive holding ``arrays``, identical for identical arrays.

    ``numpy.savez`` stamps each member with the current time; here every member has the
    timestamp ``ZIP_DATE_TIME`` and fixed attributes, and is stored uncompressed (a deflate
    stream may differ between zlib builds). Members appear in the mapping's order, followed by
    the ``extra`` members (raw bytes under their own names, e.g. a JSON manifest).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)
            archive.writestr(_member(f"{name}.npy"), member.getvalue())
        for name, data in (extra or {}).items():
            archive.writestr(_member(name), data)
    return buffer.getvalue()
