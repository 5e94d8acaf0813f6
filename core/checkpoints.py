"""Finding the checkpoint a killed run resumes from.

transformers' `get_last_checkpoint` returns the highest `checkpoint-N` folder even when the run was killed while
writing it, and resuming from that half-written folder fails. A checkpoint is complete once `trainer_state.json`
(the last file `Trainer._save_checkpoint` writes) and every file in `required` exist; the highest complete one is
used, and incomplete ones are reported and left in place (the next save of that step overwrites them).
"""

from __future__ import annotations

import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"


def last_complete_checkpoint(output_dir: str | Path, required: tuple[str, ...] = ()) -> str | None:
    """Path of the highest-numbered complete `checkpoint-N` in `output_dir`, or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    numbered = sorted(((int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))),
                      reverse=True)
    for _, path in numbered:
        if all((path / name).is_file() for name in (TRAINER_STATE, *required)):
            return str(path)
        print(f"[prift] skipping incomplete checkpoint {path} (killed while saving?)", flush=True)
    return None
