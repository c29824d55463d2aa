"""A small on-disk file format for arrays plus JSON metadata, written atomically.

Layout: ``MAGIC`` | u64 header length | JSON header | arrays, each aligned to 64 bytes.
The header records each array's dtype, shape, offset and CRC-32, so a truncated or corrupted file
is detected on load and treated as absent. Arrays are memory-mapped read-only on load, so a warm
read costs a CRC pass and no copy.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
import zlib
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"LONGLENS-STORE-1"
_ALIGN = 64


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def write(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write `meta` and `arrays` to `path` atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    offset = 0
    for name, a in arrays.items():
        entries.append(
            {
                "name": name,
                "dtype": a.dtype.str,
                "shape": list(a.shape),
                "offset": offset,
                "nbytes": a.nbytes,
                "crc32": zlib.crc32(memoryview(a).cast("B")),
            }
        )
        offset = _aligned(offset + a.nbytes)
    header = json.dumps({"meta": meta, "arrays": entries}, separators=(",", ":")).encode()
    data_start = _aligned(len(MAGIC) + 8 + len(header))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            for entry, a in zip(entries, arrays.values(), strict=True):
                f.seek(data_start + entry["offset"])
                f.write(memoryview(a).cast("B"))
            f.truncate(data_start + offset)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Read a file written by `write`; None if it is absent, truncated or corrupted."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(MAGIC) + 8:
                return None
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    try:
        if mm[: len(MAGIC)] != MAGIC:
            return None
        (hlen,) = struct.unpack("<Q", mm[len(MAGIC) : len(MAGIC) + 8])
        if len(MAGIC) + 8 + hlen > size:
            return None
        header = json.loads(mm[len(MAGIC) + 8 : len(MAGIC) + 8 + hlen])
        data_start = _aligned(len(MAGIC) + 8 + hlen)
        arrays = {}
        for e in header["arrays"]:
            start = data_start + e["offset"]
            if start + e["nbytes"] > size:
                return None
            view = memoryview(mm)[start : start + e["nbytes"]]
            if zlib.crc32(view) != e["crc32"]:
                return None
            arrays[e["name"]] = np.frombuffer(view, dtype=np.dtype(e["dtype"])).reshape(e["shape"])
        return header["meta"], arrays
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, struct.error):
        return None
