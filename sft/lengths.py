"""Rows longer than `max_length`: measured on the tokenized data before TRL truncates them, so none is cut silently.

TRL's `SFTTrainer` (1.16) cuts every tokenized row to `max_length` (keeping the start or the end, per
`truncation_mode`) and then drops, without a word, the rows left with no completion token. `measure_truncation`
counts, on the untruncated rows, what that cut will do; `run_sft` logs it and records it in run.json under `data`:

- `truncated_rows`: rows longer than `max_length` (the fully truncated ones included);
- `truncated_completion_tokens`: completion (loss) tokens the cut removes;
- `fully_truncated_rows`: rows left without a completion token: they train nothing and TRL drops them;
- `truncated_row_indices` / `fully_truncated_row_indices`: the first few, as indices into the dataset's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXAMPLES = 10  # row indices kept in the record and the warning


@dataclass(frozen=True)
class TruncationReport:
    """What cutting `rows` rows to `max_length` removes; `truncated` and `fully_truncated` hold row indices."""

    max_length: int
    rows: int
    truncated: tuple[int, ...]
    fully_truncated: tuple[int, ...]
    lost_completion_tokens: int

    def record(self) -> dict:
        """The run.json `data` fields listed in the module docstring."""
        return {"max_length": self.max_length, "truncated_rows": len(self.truncated),
                "truncated_completion_tokens": self.lost_completion_tokens,
                "fully_truncated_rows": len(self.fully_truncated),
                "truncated_row_indices": list(self.truncated[:EXAMPLES]),
                "fully_truncated_row_indices": list(self.fully_truncated[:EXAMPLES])}

    def warning(self, source: str) -> str | None:
        """The message for a truncating run, None when no row is longer than `max_length`."""
        if not self.truncated:
            return None
        text = (f"{source}: {len(self.truncated)} of {self.rows} rows are longer than max_length={self.max_length} "
                f"tokens and are truncated, losing {self.lost_completion_tokens} completion tokens "
                f"(rows {_first(self.truncated)})")
        if self.fully_truncated:
            text += (f"; {len(self.fully_truncated)} of them are left without a completion token: they train nothing "
                     f"and are dropped (rows {_first(self.fully_truncated)})")
        return text + ". Raise max_length or shorten these rows to train on all of them."


def _first(indices: tuple[int, ...]) -> str:
    shown = ", ".join(map(str, indices[:EXAMPLES]))
    return shown + (", ..." if len(indices) > EXAMPLES else "")


def measure_truncation(dataset, max_length: int, truncation_mode: str = "keep_start") -> TruncationReport:
    """What cutting every row of the tokenized `dataset` (`input_ids`, `labels`) to `max_length` would remove.

    Row lengths come from the Arrow column without materialising the rows; only the overlong rows' labels are read.
    """
    import pyarrow.compute as pc

    lengths = pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_numpy(zero_copy_only=False)
    overlong = np.flatnonzero(lengths > max_length).tolist()
    keep = slice(None, max_length) if truncation_mode == "keep_start" else slice(-max_length, None)  # as TRL cuts
    lost, empty = 0, []
    for index, labels in zip(overlong, dataset.select(overlong)["labels"] if overlong else [], strict=True):
        kept = sum(label != -100 for label in labels[keep])
        lost += sum(label != -100 for label in labels) - kept
        if not kept:
            empty.append(index)
    return TruncationReport(max_length, len(lengths), tuple(overlong), tuple(empty), lost)
