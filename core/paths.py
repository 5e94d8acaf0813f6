"""Where prift keeps caches and finds benchmark data.

- cache root: `$PRIFT_CACHE_DIR`, else `$XDG_CACHE_HOME/prift`, else `~/.cache/prift` (converted models, reference
  signal caches).
- data root: `$PRIFT_DATA_DIR`, else `../shared/data` beside the source checkout when it exists, else None (loaders
  then fall back to hub ids).
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    if os.environ.get("PRIFT_CACHE_DIR"):
        return Path(os.environ["PRIFT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "prift"


def data_root(explicit: str | Path | None = None) -> Path | None:
    """The benchmark data folder: `explicit`, `$PRIFT_DATA_DIR`, or `../shared/data` of the checkout."""
    for candidate in (explicit, os.environ.get("PRIFT_DATA_DIR")):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(f"data dir {str(path)!r} does not exist")
            return path
    shared = SOURCE_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None
