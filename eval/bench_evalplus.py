"""HumanEval+ (v0.1.10, 164 tasks) and MBPP+ (v0.2.0, 378 tasks; ``version: v0.1.0`` = the older 399-task set),
graded by the protocol of evalplus 0.3.1 (the release whose defaults these data versions are), side by side with
``benchmarks/crosscheck_evalplus.py``. Every program still runs only in the sandbox (``prift.rewards.sandbox``).

Protocol (file references are to the evalplus 0.3.1 wheel, ``pip install evalplus==0.3.1``):

- Inputs: ``base_input`` and ``plus_input`` of each task; MBPP+ inputs of 52 tasks are converted after loading to
  tuples / sets / complex exactly as ``mbpp_deserialize_inputs(task_id, inputs)`` does (``evalplus/data/mbpp.py``;
  ported verbatim below, also applied to v0.1.0 as evalplus 0.3.1 does). MBPP+ task 793 has ``plus_input = {}``: no
  plus input, so its plus part passes whenever the program defines the function (as in evalplus).
- Expected outputs: the canonical solution's own outputs, computed once per data file on this host, as
  ``evaluate.get_groundtruth`` / ``gen/util.trusted_exec`` do: ``exec(prompt + canonical_solution)`` in fresh globals
  (once for the base and once for the plus inputs), each input deep-copied, each call timed with ``time.time()``;
  MBPP+ tasks in ``MBPP_OUTPUT_NOT_NONE_TASKS`` keep only ``output is not None``. This runs trusted code in a
  subprocess (no sandbox) and is cached under ``<cache root>/evalplus/`` (``$PRIFT_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/prift``, else ``~/.cache/prift``), keyed by the data file's sha256; the first load of the full
  MBPP+ takes minutes, as evalplus's own "Computing expected output...".
- Time limits (``eval/__init__.py: untrusted_check``, ``config.py``): input ``i`` must answer within
  ``max(min_time_limit, time_limit_factor * reference_time[i])`` (defaults 1.0 s and 4.0, evalplus's
  ``DEFAULT_MIN_TIME_LIMIT`` / ``DEFAULT_GT_TIME_LIMIT_FACTOR``), enforced by ``prift_call_timeout`` (the sandbox
  kills the program: status ``timeout``; evalplus reports such an input as ``fail``). Each part (base, plus) also has
  evalplus's per-task budget ``min(timeout_per_task, sum(limits)) + 2`` s (``EVALPLUS_TIMEOUT_PER_TASK`` = 60, +1 s,
  and ``join(timeout + 1)``), counted here over the calls only, since evalplus's comparisons are near-free.
- Comparison (``eval/__init__.py: unsafe_execute``, with ``fast_check=True`` as ``evaluate`` passes by default: the
  first failing input ends the part): ``exact = out == expected``; MBPP+ special oracles (``_special_oracle.py``):
  ``are_equivalent`` (any output), ``sum_div`` (or ``out == 0``), ``surface_Area`` / ``digit_distance_nums`` (or the
  oracle's value), ``MBPP_OUTPUT_SET_EQ_TASKS`` (``set(out) == set(expected)``), ``MBPP_OUTPUT_NOT_NONE_TASKS``
  (a bool output must equal, anything else must be ``is not None`` as expected); HumanEval/32 ``find_zero``:
  ``abs(_poly(*input, out)) <= atol`` only -- and evalplus 0.3.1 then ``continue``s past its bookkeeping, so its
  ``untrusted_check`` reports ``fail`` for *every* HumanEval/32 program, the canonical one included. That is the
  default here too (the official verdict of the released package); setting ``find_zero_fix: true`` grades
  HumanEval/32 by the oracle, as evalplus's main branch does since commit 6eb1e19 (#241, after the 0.3.1 release).
  Then ``if atol == 0 and is_floats(expected): atol = 1e-6`` (this sticks for the rest of the part, as in
  evalplus), and when not exact and ``atol != 0``: same ``type``, same ``len`` for a list/tuple, and
  ``np.allclose(out, expected, rtol=1e-07, atol=atol)`` -- here in pure Python (the grader has no numpy): numpy
  2's ``isclose`` rule ``|x - y| <= atol + rtol * |y|`` with finite ``y``, or ``x == y``, after numpy's shape
  inference and broadcasting (a ragged or non-numeric value fails, as numpy raises).
- Verdicts: ``base`` from the base inputs, ``plus`` from the plus inputs; a sample counts as solved (the benchmark's
  status, pass@k) when both pass, as evalplus's "base + extra tests" score. The test code has three cases -- (0)
  the harness, (1) the base inputs, (2) the plus inputs -- so the sandbox's ``passed`` count gives the base verdict:
  :meth:`EvalPlusBenchmark.base_status` (``passed >= 2``), evalplus's "base tests" score (``views`` /
  ``view_status`` offer it to a runner that reports extra verdicts).

Settings (defaults = evalplus 0.3.1's): ``version`` (MBPP+: ``v0.2.0`` or ``v0.1.0``), ``time_limit_factor`` (4.0,
its ``--gt-time-limit-factor``), ``min_time_limit`` (1.0, ``--min-time-limit``), ``timeout_per_task`` (60,
``$EVALPLUS_TIMEOUT_PER_TASK``), HumanEval+ ``find_zero_fix`` (False, see above).

Big expected outputs (a marshal size over 64 KiB, compared exactly: ``atol`` still 0, no special oracle) travel as
digests, not values (HumanEval/15 and /130 produce ~7-9 MB per input, MBPP+ 255 up to 644 MB): the output matches
when its ``marshal`` (format 2) bytes hash equal (same types, values, order), else when its canonical form hashes
equal -- numbers as exact rationals (``1 == 1.0 == True``), sets and dicts sorted, lists/tuples/deques kept apart --
which is ``==`` for plain data. NaN never equals (distinct objects, as in evalplus).

Deliberate differences, all from running programs in the sandbox rather than in evalplus's process:

- a result that is not plain data (the sandbox's data contract: builtin scalars and containers, Counter,
  OrderedDict, defaultdict, deque, Fraction, Decimal) is an opaque handle that never compares equal; evalplus
  compares it with ``==`` in the program's process (a namedtuple or a dict view can equal the expected tuple / set
  there). Handles still iterate (set-equality tasks) and are ``not None`` (not-None tasks) as there;
- the program gets a copy of each input; evalplus passes the input objects themselves, so (with ``find_zero_fix``)
  a ``find_zero`` that mutates its coefficient list is judged there on the mutated list, here on the original;
- one process serves base and plus (evalplus starts one per part), so module-level state carries over;
- limits: the sandbox's (no ``numpy`` or other site packages, ``open`` works, ``--sandbox_memory_mb`` rather than
  evalplus's 4 GiB, a reply of at most 512 MiB: MBPP+ 255's largest plus output, 644 MB, cannot come back, so no
  program solves that task's plus part here);
- the run's wall clock: the sandbox's per-problem limit (:meth:`EvalPlusBenchmark.sandbox_limits`) is the two
  parts' evalplus budgets plus ``RUN_MARGIN_S`` for start-up and comparisons (never below ``--sandbox_timeout_s``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import marshal
import os
import pickle
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prift.core.paths import cache_root
from prift.core.provenance import sha256_file
from prift.eval.bench_code import CodeBenchmark, HumanEval
from prift.eval.benchmarks import BENCHMARKS, Loaded, Problem, read_json_rows
from prift.rewards.code import TestSpec

EVALPLUS_VERSION = "0.3.1"  # the protocol below; the `crosscheck` extra pins this version
DIGEST_OVER = 1 << 16  # bytes (marshal) above which an exactly compared expected output travels as digests
ORACLE_FORMAT = "oracle-v1"  # cache layout / record version (part of the cache path)
BASE_CASES = 2  # cases 0 (harness) and 1 (base inputs) pass <=> the base verdict is "pass"
RUN_MARGIN_S = 10.0  # a run's wall clock beyond evalplus's two budgets: start-up, the program's top level, comparisons

# ---- grader-side code -------------------------------------------------------------------------------------------
# Runs in the sandbox's grader (`python -I -S`, standard library only) in a namespace of its own, and on this host
# (the same functions compute the expected outputs' digests). Rules cite evalplus 0.3.1's evalplus/eval/__init__.py
# (`unsafe_execute`, `untrusted_check`, `is_floats`) and evalplus/eval/_special_oracle.py.
HARNESS = r'''
import cmath
import json
import marshal
import math
import time

RTOL = 1e-07  # unsafe_execute: np.allclose(out, exp, rtol=1e-07, atol=atol)
FLOAT_ATOL = 1e-6  # unsafe_execute: "if atol == 0 and is_floats(exp): atol = 1e-6"
MBPP_OUTPUT_NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")
MBPP_OUTPUT_SET_EQ_TASKS = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                            "larg_nnum", "intersection_array", "find_dissimilar", "Diff")
MBPP_SPECIAL = ("are_equivalent", "sum_div", "surface_Area", "digit_distance_nums", *MBPP_OUTPUT_SET_EQ_TASKS,
                *MBPP_OUTPUT_NOT_NONE_TASKS)
INT64 = (-(2**63), 2**64)  # numpy holds ints in this range in an int64/uint64 array, others in an object array


def is_floats(x):
    """evalplus's is_floats: a float, or a non-empty list/tuple of floats."""
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def poly(xs, x):  # _special_oracle._poly (HumanEval/32)
    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])


def surface_Area(base_edge, height):  # _special_oracle._surface_Area (Mbpp/581)
    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    base_area = base_edge**2
    lateral_area = 4 * (base_edge * slant_height) / 2
    total_surface_area = base_area + lateral_area
    return round(total_surface_area)


def digit_distance_nums(num1, num2):  # _special_oracle._digit_distance_nums (Mbpp/558)
    str_num1, str_num2 = str(num1), str(num2)
    max_length = max(len(str_num1), len(str_num2))
    str_num1, str_num2 = str_num1.zfill(max_length), str_num2.zfill(max_length)
    total_difference = 0
    for digit1, digit2 in zip(str_num1, str_num2):
        difference = abs(int(digit1) - int(digit2))
        total_difference += difference
    return total_difference


# ---- == of plain data through digests ----------------------------------------------------------------------------
class Never(Exception):
    """The value never compares equal: a NaN (distinct objects), or something that is not plain data."""


_STR = json.encoder.encode_basestring_ascii


def _real(v):
    """Exact canonical text of a real number (int, float, Fraction, Decimal): equal values, equal text."""
    t = type(v)
    if t is int or t is bool:
        return hex(v)
    if t is float:
        if v != v:
            raise Never
        if v in (math.inf, -math.inf):
            return "inf" if v > 0 else "-inf"
    elif t.__name__ == "Decimal" and t.__module__ == "decimal":
        if v.is_nan():
            raise Never
        if v.is_infinite():
            return "inf" if v > 0 else "-inf"
    elif not (t.__name__ == "Fraction" and t.__module__ == "fractions"):
        raise Never
    n, d = v.as_integer_ratio()
    return hex(n) if d == 1 else hex(n) + "/" + hex(d)


def _canon(v, out):
    t = type(v)
    if t is str:
        out.append(_STR(v))
    elif t is int or t is bool:
        out.append(hex(v))
    elif t is float:
        out.append(_real(v))
    elif v is None:
        out.append("N")
    elif t is list or t is tuple or (t.__name__ == "deque" and t.__module__ == "collections"):
        open_, close = ("[", "]") if t is list else ("(", ")") if t is tuple else ("Q[", "]")
        if v and all(type(e) is str for e in v):
            out.append(open_ + json.dumps(list(v), separators=(",", ":"))[1:-1] + close)
        elif v and all(type(e) is int or type(e) is bool for e in v):
            out.append(open_ + ",".join(map(hex, v)) + close)
        else:
            out.append(open_)
            for i, e in enumerate(v):
                if i:
                    out.append(",")
                _canon(e, out)
            out.append(close)
    elif t is complex:
        if v.imag == 0:
            out.append(_real(v.real))
        else:
            out.append("C(" + _real(v.real) + "," + _real(v.imag) + ")")
    elif t is bytes:
        out.append("B" + v.hex())
    elif t is set or t is frozenset:
        out.append("{" + ",".join(sorted(canon(e) for e in v)) + "}")
    elif t is dict or (t.__module__ == "collections" and t.__name__ in ("Counter", "OrderedDict", "defaultdict")):
        out.append("D{" + ",".join(sorted(canon(k) + ":" + canon(e) for k, e in v.items())) + "}")
    else:
        out.append(_real(v))  # Fraction, Decimal; anything else raises Never


def canon(v):
    """Canonical text of plain data: ``canon(a) == canon(b)`` iff ``a == b`` (no NaN; Counter equality with zero
    counts aside). Raises Never for a NaN or a value that is not plain data."""
    out = []
    _canon(v, out)
    return "".join(out)


def _sha(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


def digests(v):
    """(strict, canonical) digests of an expected output; (None, None) when it can never compare equal."""
    try:
        text = canon(v)
    except Never:
        return None, None
    return _sha(marshal.dumps(v, 2)), _sha(text.encode())


def equal(out, record):
    """``out == expected`` for an expected-output record: (0, value) or (1, strict digest, canonical digest)."""
    if record[0] == 0:
        try:
            return bool(out == record[1])
        except Exception:  # a handle (not plain data) inside: never equal; evalplus compares it in the program
            return False
    strict, canonical = record[1], record[2]
    if canonical is None:
        return False
    try:
        if _sha(marshal.dumps(out, 2)) == strict:
            return True
    except ValueError:  # not marshal data (a handle, Counter, ...): the canonical form decides
        pass
    try:
        return _sha(canon(out).encode()) == canonical
    except (Never, RecursionError):
        return False


# ---- np.allclose(out, exp, rtol=1e-07, atol=atol) in pure Python (numpy 2.x isclose) ---------------------------
def _array(v, big_ints):
    """numpy's shape inference: (shape, leaves); ValueError when ragged, TypeError for a leaf that is not a number.
    An int outside int64/uint64 makes an object array: fine for ``x`` (Python arithmetic), not for ``y``, whose
    ``isfinite`` numpy refuses."""
    if type(v) is list or type(v) is tuple:
        items = [_array(e, big_ints) for e in v]
        if not items:
            return (0,), []
        shape = items[0][0]
        if any(s != shape for s, _ in items):
            raise ValueError("setting an array element with a sequence (inhomogeneous shape)")
        return (len(v), *shape), [leaf for _, leaves in items for leaf in leaves]
    if type(v) in (bool, float, complex) or (type(v) is int and (big_ints or INT64[0] <= v < INT64[1])):
        return (), [v]
    raise TypeError(f"{type(v).__name__} is not a number numpy compares")


def _broadcast(sx, sy):
    n = max(len(sx), len(sy))
    px, py = (1,) * (n - len(sx)) + tuple(sx), (1,) * (n - len(sy)) + tuple(sy)
    shape = []
    for a, b in zip(px, py):
        if a != b and a != 1 and b != 1:
            raise ValueError(f"operands could not be broadcast together with shapes {sx} {sy}")
        shape.append(b if a == 1 else a)
    return px, py, tuple(shape)


def _strides(padded, shape):
    strides, step = [0] * len(shape), 1
    for axis in range(len(shape) - 1, -1, -1):
        strides[axis] = 0 if padded[axis] == 1 and shape[axis] != 1 else step
        step *= padded[axis]
    return strides


def _isfinite(y):
    return cmath.isfinite(y) if type(y) is complex else math.isfinite(y)


def _close(x, y, rtol, atol):
    return bool((abs(x - y) <= atol + rtol * abs(y) and _isfinite(y)) or x == y)


def allclose(a, b, rtol, atol):
    """``np.allclose(a, b, rtol=rtol, atol=atol)`` (numpy 2.x): Python int/float/complex operands stay scalars
    (an int ``b`` becomes a float); others become arrays (``b`` as float64 / complex128), broadcast, and every
    element needs ``|x - y| <= atol + rtol * |y|`` with ``y`` finite, or ``x == y``. Raises where numpy raises."""
    scalar = (int, float, complex)
    if isinstance(a, scalar) and isinstance(b, scalar):
        return _close(a, float(b) if isinstance(b, int) else b, rtol, atol)
    sx, xs = ((), [a]) if isinstance(a, scalar) else _array(a, True)
    sy, ys = ((), [float(b) if isinstance(b, int) else b]) if isinstance(b, scalar) else _array(b, False)
    as_x = complex if any(type(v) is complex for v in xs) else float
    as_y = complex if any(type(v) is complex for v in ys) else float
    xs, ys = [as_x(v) for v in xs], [as_y(v) for v in ys]
    px, py, shape = _broadcast(sx, sy)
    stride_x, stride_y = _strides(px, shape), _strides(py, shape)
    total = 1
    for size in shape:
        total *= size
    for flat in range(total):
        ix = iy = 0
        rest = flat
        for axis in range(len(shape) - 1, -1, -1):
            rest, index = divmod(rest, shape[axis])
            ix += index * stride_x[axis]
            iy += index * stride_y[axis]
        if not _close(xs[ix], ys[iy], rtol, atol):
            return False
    return True


# ---- one task's base and plus parts --------------------------------------------------------------------------------
class Harness:
    """unsafe_execute + untrusted_check of one task against the program's function ``fn`` (a sandbox handle)."""

    def __init__(self, fn, entry, dataset, atol, timeout_per_task, loader, blob, set_timeout, find_zero_fix=False):
        self.fn, self.entry, self.dataset, self.task_atol = fn, entry, dataset, atol
        self.timeout_per_task, self.set_timeout = timeout_per_task, set_timeout
        # evalplus 0.3.1's find_zero oracle ends with `continue` before `details[i] = True; progress.value += 1`, so
        # untrusted_check sees fewer details than inputs and reports `fail` for every program (fixed after the
        # release, evalplus commit 6eb1e19 "fix(find_zero): record results before continue (#241)")
        self.never_passes = dataset == "humaneval" and entry == "find_zero" and not find_zero_fix
        data = bytes.fromhex(blob)
        self.parts = __import__("pickle").loads(data) if loader == "pickle" else marshal.loads(data)

    def run(self, part):
        inputs, expected, limits = self.parts[part]
        if self.fn is None:  # exec_globals[entry_point] raises KeyError: the part fails
            raise AssertionError(f"the program does not define {self.entry}")
        budget = min(self.timeout_per_task, sum(limits)) + 2.0  # untrusted_check: timeout + 1, join(timeout + 1)
        spent, atol = 0.0, self.task_atol
        for i, inp in enumerate(inputs):
            left = budget - spent
            if left <= 0:
                raise AssertionError(f"{part} input {i}: evalplus's time budget for the task ({budget:g} s) is used up")
            self.set_timeout(min(limits[i], left))
            started = time.monotonic()
            try:
                out = self.fn(*inp)
            except Exception as exc:  # the program raised (ProgramTimeout/Died/Memory are not Exceptions)
                raise AssertionError(f"{part} input {i}: raised {type(exc).__name__}: {exc}"[:400]) from None
            spent += time.monotonic() - started
            try:
                atol = self.check(inp, out, expected[i], atol)
            except Exception as exc:
                why = str(exc) or type(exc).__name__
                raise AssertionError(f"{part} input {i}: {why} (input {repr(inp)[:150]})"[:500]) from None
        self.set_timeout(None)
        if self.never_passes and inputs:
            raise AssertionError("evalplus 0.3.1 never records a find_zero input as passed (setting find_zero_fix)")

    def check(self, inp, out, record, atol):
        """One input of unsafe_execute's loop; returns the (possibly raised) atol, raises when the input fails."""
        exact = equal(out, record)
        exp = record[1] if record[0] == 0 else None  # a digest's value is never needed (see expected_records)
        entry = self.entry
        if self.dataset == "mbpp":
            if entry == "are_equivalent":  # Mbpp/164
                exact = True
            elif entry == "sum_div":  # Mbpp/295
                exact = exact or equal(out, (0, 0))
            elif entry == "surface_Area":  # Mbpp/581
                exact = exact or abs(out - surface_Area(*inp)) <= atol
            elif entry == "digit_distance_nums":  # Mbpp/558
                exact = exact or equal(out, (0, digit_distance_nums(*inp)))
            elif entry in MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry in MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if self.dataset == "humaneval" and entry == "find_zero":
            if not abs(poly(*inp, out)) <= atol:
                raise AssertionError(f"|poly(xs, {out!r})| > {atol}")
            return atol  # `continue`: atol is not touched
        if atol == 0 and record[0] == 0 and is_floats(exp):
            atol = FLOAT_ATOL
        if not exact and atol != 0:
            if type(out) != type(exp):
                raise AssertionError(f"wrong type {type(out).__name__} (expected {type(exp).__name__})")
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                raise AssertionError(f"wrong length {len(out)} (expected {len(exp)})")
            if not allclose(out, exp, RTOL, atol):
                raise AssertionError(f"not within atol={atol} rtol={RTOL}")
        elif not exact:
            raise AssertionError("wrong output")
        return atol
'''

H: dict[str, Any] = {}
exec(compile(HARNESS, "<evalplus harness>", "exec"), H)  # noqa: S102 - our own source; the host uses it too

# The test code of one task: three top-level statements, i.e. three sandbox cases (see the module docstring). Case 0
# reaches builtins through ``__builtins__`` (a program's top-level names share this namespace and may shadow them).
TEST_CODE = """\
if True:  # case 0: evalplus's harness, in a namespace of its own
    _prift_evalplus = {{}}
    __builtins__.exec({harness!r}, _prift_evalplus)
    _prift_evalplus = _prift_evalplus["Harness"](__builtins__.globals().get({entry!r}), {entry!r}, {dataset!r},
                                                 {atol!r}, {timeout!r}, {loader!r}, {blob!r}, prift_call_timeout,
                                                 {find_zero_fix!r})
_prift_evalplus.run("base")  # case 1: base_input
_prift_evalplus.run("plus")  # case 2: plus_input
"""


# ---- inputs (evalplus/data/mbpp.py of evalplus 0.3.1, verbatim rules) ---------------------------------------------
def mbpp_deserialize_inputs(task_id: str, inputs: list) -> list:
    """evalplus's ``mbpp_deserialize_inputs``: JSON lists back to the tuples / sets / complex 52 MBPP+ tasks take."""
    number = int(str(task_id).split("/")[-1])
    if number in (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740,
                  744, 809):
        return [[tuple(lst) for lst in inp] for inp in inputs]
    if number in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
        return [[[tuple(lst) for lst in lst_lst] for lst_lst in inp] for inp in inputs]
    if number in (75, 413, 444, 753):
        return [[[tuple(lst) for lst in inp[0]]] + [inp[1]] for inp in inputs]
    if number in (106, 750):
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if number == 115:
        return [[[set(item) if isinstance(item, list) and len(item) else {} for item in inp[0]]] for inp in inputs]
    if number == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if number in (250, 405, 446, 617, 720, 763, 808):
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if number in (259, 401, 445):
        modified = [[[tuple(lst) for lst in lst_lst] for lst_lst in inp] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in modified]
    if number == 278:
        modified = [[[tuple(item) if isinstance(item, list) else item for item in inp[0]]] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in modified]
    if number == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if number == 722:
        return [[{key: tuple(value) for key, value in inp[0].items()}] + inp[1:] for inp in inputs]
    if number == 252:
        return [[complex(inp[0])] for inp in inputs]
    if number in (580, 615, 791):

        def turn_all_list_into_tuple(inp):
            if isinstance(inp, list):
                return tuple([turn_all_list_into_tuple(item) for item in inp])
            return inp

        return [turn_all_list_into_tuple(inp) for inp in inputs]
    return inputs


def task_inputs(dataset: str, row: dict, deserialize: bool = True) -> dict[str, list]:
    """{"base": [...], "plus": [...]} argument lists of a row, deserialised as evalplus's loader does for MBPP+."""
    parts = {}
    for part in ("base", "plus"):
        inputs = row[f"{part}_input"]
        inputs = list(inputs) if isinstance(inputs, list) else []  # Mbpp/793: plus_input == {} (no plus inputs)
        parts[part] = mbpp_deserialize_inputs(row["task_id"], inputs) if dataset == "mbpp" and deserialize else inputs
    return parts


# ---- expected outputs (evaluate.get_groundtruth + gen/util.trusted_exec), in a subprocess ------------------------
def expected_records(dataset: str, entry: str, atol: float, outputs: list) -> list[tuple]:
    """Per input, ``(0, value)`` or -- for a big output compared exactly -- ``(1, strict digest, canonical digest)``.
    "Compared exactly" replays evalplus's atol for the part: a digest only where atol is still 0 after this input's
    ``is_floats`` update and the task has no special oracle, so the harness never needs the value."""
    special = (dataset == "mbpp" and entry in H["MBPP_SPECIAL"]) or (dataset == "humaneval" and entry == "find_zero")
    records = []
    for exp in outputs:
        record: tuple = (0, exp)
        if not special:
            atol = atol if atol != 0 or not H["is_floats"](exp) else H["FLOAT_ATOL"]
            if atol == 0 and _marshal_size(exp) > DIGEST_OVER:
                record = (1, *H["digests"](exp))
        records.append(record)
    return records


def _marshal_size(value: Any) -> float:
    try:
        return len(marshal.dumps(value, 2))
    except ValueError:  # Counter, OrderedDict, ...: never digested (Counter equality ignores zero counts)
        return -1


def compute_oracle(dataset: str, row: dict) -> dict:
    """Expected outputs and reference times of one task, as evalplus computes them (trusted code: host, no sandbox)."""
    entry, code = row["entry_point"], row["prompt"] + row["canonical_solution"]
    record: dict = {"error": None}
    for part, inputs in task_inputs(dataset, row).items():
        namespace: dict = {}
        exec(code, namespace)  # noqa: S102 - the dataset's canonical solution (trusted, as evalplus runs it)
        fn = namespace[entry]
        outputs, times = [], []
        for inp in inputs:
            inp = copy.deepcopy(inp)
            start = time.time()
            outputs.append(fn(*inp))
            times.append(time.time() - start)
        if dataset == "mbpp" and entry in H["MBPP_OUTPUT_NOT_NONE_TASKS"]:
            outputs = [out is not None for out in outputs]
        record[part] = (expected_records(dataset, entry, float(row.get("atol") or 0), outputs), times)
    return record


def _task_file(folder: Path, task_id: str) -> Path:
    return folder / (str(task_id).replace("/", "_") + ".pkl")


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def oracle_worker() -> None:
    """Subprocess entry point: JSON ``{"dataset", "folder", "rows"}`` on stdin; one cache file per task."""
    job = json.load(sys.stdin)
    folder = Path(job["folder"])
    progress = sys.stdout
    for row in job["rows"]:
        print("start", row["task_id"], file=progress, flush=True)
        try:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # prints are not progress
                record = compute_oracle(job["dataset"], row)
        except Exception as exc:  # noqa: BLE001 - the canonical solution fails: that task cannot be graded
            record = {"error": f"canonical solution failed: {type(exc).__name__}: {exc}"[:500]}
        try:
            payload = pickle.dumps(record, 4)
        except Exception as exc:  # noqa: BLE001 - an expected output pickle cannot hold
            payload = pickle.dumps({"error": f"expected output cannot be stored: {type(exc).__name__}: {exc}"[:500]})
        _write_atomic(_task_file(folder, row["task_id"]), payload)


def oracles(dataset: str, data_sha256: str, rows: list[dict], quiet: bool = False) -> dict[str, dict]:
    """{task_id: record} for ``rows``, from the cache or computed (in one subprocess, tasks in order, as evalplus's
    ``get_groundtruth`` runs them one after the other). A task whose process dies gets an error record."""
    folder = cache_root() / "evalplus" / f"{data_sha256}-{ORACLE_FORMAT}-{DIGEST_OVER}"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [row for row in rows if not _task_file(folder, row["task_id"]).exists()]
    if missing and not quiet:
        print(f"[prift] evalplus {dataset}: computing the expected outputs of {len(missing)} tasks (once per data "
              f"file, cached in {folder})", file=sys.stderr, flush=True)
    while missing:
        job = json.dumps({"dataset": dataset, "folder": str(folder), "rows": missing})
        proc = subprocess.run([sys.executable, "-c", "from prift.eval.bench_evalplus import oracle_worker; "
                               "oracle_worker()"], input=job, capture_output=True, text=True)
        started = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("start ")]
        left = [row for row in missing if not _task_file(folder, row["task_id"]).exists()]
        if left and started and left[0]["task_id"] == started[-1]:  # the process died on this task
            why = f"the canonical solution's process ended (status {proc.returncode}): {proc.stderr[-300:]}"
            _write_atomic(_task_file(folder, left[0]["task_id"]), pickle.dumps({"error": why}))
            left = left[1:]
        elif left:
            raise RuntimeError(f"evalplus expected outputs: worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
        missing = left
    return {row["task_id"]: pickle.loads(_task_file(folder, row["task_id"]).read_bytes()) for row in rows}


# ---- test code --------------------------------------------------------------------------------------------------
def time_limits(times: list[float], settings: dict) -> list[float]:
    """untrusted_check: ``max(min_time_limit, gt_time_limit_factor * t)`` per input."""
    return [max(settings["min_time_limit"], settings["time_limit_factor"] * t) for t in times]


def run_budget_s(oracle: dict, settings: dict) -> float:
    """The sandbox wall clock of one task: evalplus's budget ``min(timeout_per_task, sum(limits)) + 2`` s of each
    part, plus RUN_MARGIN_S."""
    return RUN_MARGIN_S + sum(min(settings["timeout_per_task"], sum(time_limits(oracle[part][1], settings))) + 2.0
                              for part in ("base", "plus"))


def evalplus_tests(dataset: str, entry: str, atol: float, inputs: dict[str, list], oracle: dict,
                   settings: dict) -> TestSpec:
    """The sandbox test code of one task: inputs, expected records and per-input limits for both parts."""
    blob = {part: (inputs[part], oracle[part][0], time_limits(oracle[part][1], settings)) for part in ("base", "plus")}
    for part in ("base", "plus"):
        if len(blob[part][0]) != len(blob[part][1]):
            raise ValueError(f"{part}: {len(blob[part][0])} inputs but {len(blob[part][1])} expected outputs")
    try:
        data, loader = marshal.dumps(blob, 4), "marshal"
    except ValueError:  # a Counter / OrderedDict / deque / Fraction / Decimal among the expected outputs
        data, loader = pickle.dumps(blob, 4), "pickle"
    code = TEST_CODE.format(harness=HARNESS, entry=entry, dataset=dataset, atol=float(atol),
                            timeout=float(settings["timeout_per_task"]), loader=loader, blob=data.hex(),
                            find_zero_fix=bool(settings.get("find_zero_fix", False)))
    return TestSpec("assert", code)


# ---- benchmarks -------------------------------------------------------------------------------------------------
class EvalPlusBenchmark(CodeBenchmark):
    """A dataset of the evalplus release schema graded by evalplus's protocol (module docstring)."""

    evalplus_dataset = ""  # "humaneval" | "mbpp": evalplus's dataset name (selects the special oracles)
    releases: dict[str, tuple[str, int, str, str]] = {}  # version -> (data file, rows, release url, sha256)
    default_version = ""
    hub = None  # no hub dataset holds this schema: the release asset is downloaded instead (data_file)

    def __init__(self, data_dir: str | Path | None = None, **settings: Any) -> None:
        super().__init__(data_dir, **settings)
        for key, default in self.settings_defaults().items():  # None (a flag left unset): evalplus's default
            if self.settings[key] is None:
                self.settings[key] = default
        version = self.settings["version"]
        if version not in self.releases:
            raise ValueError(f"{self.name}: unknown version {version!r}; valid: {', '.join(self.releases)}")
        self.files = (self.releases[version][0],)
        self.rows = self.releases[version][1]
        for key in ("time_limit_factor", "min_time_limit", "timeout_per_task"):
            if not float(self.settings[key]) > 0:
                raise ValueError(f"{self.name}: {key} must be > 0, got {self.settings[key]!r}")

    @classmethod
    def settings_defaults(cls) -> dict:
        # evalplus's defaults: --gt-time-limit-factor 4.0, --min-time-limit 1.0, $EVALPLUS_TIMEOUT_PER_TASK 60
        return {"version": cls.default_version, "time_limit_factor": 4.0, "min_time_limit": 1.0,
                "timeout_per_task": 60.0}

    # --- data -------------------------------------------------------------------------------------------------
    def data_file(self) -> tuple[Path, dict]:
        """The data file (the shared copy, else the release asset evalplus downloads, fetched once into the cache
        and checked against its pinned sha256) and its provenance."""
        _, _, url, sha = self.releases[self.settings["version"]]
        root = self.local_root()
        if root is not None:
            path = root / self.files[0]
            return path, {"path": str(path), "sha256": sha256_file(path)}
        path = cache_root() / "evalplus" / "data" / f"{self.name}-{self.settings['version']}.jsonl.gz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as handle:  # noqa: S310
                shutil.copyfileobj(response, handle)
            if sha256_file(tmp) != sha:
                tmp.unlink()
                raise ValueError(f"{self.name}: {url} does not have the pinned sha256 {sha}")
            os.replace(tmp, path)
        return path, {"path": str(path), "sha256": sha256_file(path), "url": url}

    def load(self, limit: int | None = None) -> Loaded:
        """Rows of the data file; problems (and expected outputs) only for the first ``limit`` rows."""
        path, source = self.data_file()
        rows = [row for row in read_json_rows(path) if "__error__" in row or self.keep(row)]
        chosen = rows[:limit] if limit else rows
        usable = [row for row in chosen if "__error__" not in row and "task_id" in row]
        self._oracles = oracles(self.evalplus_dataset, source["sha256"], usable) if usable else {}
        return Loaded([self._problem(row, i) for i, row in enumerate(chosen)], [source], len(rows))

    def to_problem(self, row: dict, index: int) -> Problem:
        task_id, entry = row["task_id"], row["entry_point"]
        oracle = self._oracles.get(task_id) or {"error": "no expected outputs"}
        if oracle["error"]:
            raise ValueError(oracle["error"])
        inputs = task_inputs(self.evalplus_dataset, row)
        spec = evalplus_tests(self.evalplus_dataset, entry, float(row.get("atol") or 0), inputs, oracle, self.settings)
        meta = {"entry_point": entry, "reference": row["prompt"] + row["canonical_solution"],
                "base_inputs": len(inputs["base"]), "plus_inputs": len(inputs["plus"]), "base_cases": BASE_CASES,
                "run_budget_s": round(run_budget_s(oracle, self.settings), 3)}
        return Problem(task_id, row["prompt"], spec, meta)

    def sandbox_limits(self, problem: Problem) -> dict:
        """The run's wall clock: evalplus's budgets of the base and plus parts plus a margin (:func:`run_budget_s`)."""
        return {"timeout_s": problem.meta["run_budget_s"]}

    # --- verdicts ---------------------------------------------------------------------------------------------
    views = ("base",)  # the sample's status is evalplus's base + plus verdict; "base" is its base-only one

    @staticmethod
    def base_status(problem: Problem, row: dict) -> str:
        """A graded sample's status on the base inputs alone (evalplus's "base tests" score): ``correct`` when the
        harness and base cases passed (``passed >= 2``), else the sample's own status."""
        if row.get("status") == "correct" or int(row.get("passed") or 0) >= problem.meta.get("base_cases", BASE_CASES):
            return "correct"
        return row.get("status") or "error"

    def view_status(self, view: str, problem: Problem, row: dict) -> str:
        if view != "base":
            return super().view_status(view, problem, row)
        return self.base_status(problem, row)


@BENCHMARKS.register("humaneval_plus")
class HumanEvalPlus(EvalPlusBenchmark, HumanEval):
    """HumanEval+ v0.1.10 (evalplus 0.3.1's default). Prompts and program extraction as ``humaneval``."""

    name, split, rows = "humaneval_plus", "test", 164
    evalplus_dataset, default_version = "humaneval", "v0.1.10"

    @classmethod
    def settings_defaults(cls) -> dict:
        # find_zero_fix: False = evalplus 0.3.1 as released (every HumanEval/32 program fails); True = its fix on
        # evalplus's main branch (commit 6eb1e19, unreleased): HumanEval/32 is judged by the find_zero oracle
        return {**super().settings_defaults(), "find_zero_fix": False}
    releases = {"v0.1.10": ("humaneval_plus/HumanEvalPlus-v0.1.10.jsonl.gz", 164,
                            "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/"
                            "HumanEvalPlus.jsonl.gz",
                            "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101")}


@BENCHMARKS.register("mbpp_plus")
class MBPPPlus(EvalPlusBenchmark):
    """MBPP+ v0.2.0 (evalplus 0.3.1's default, 378 tasks); ``version: v0.1.0`` = the 399-task set of evalplus 0.2.x
    (graded by the same 0.3.1 rules). Prompt: the task's docstring, as the former ``mbpp_plus``."""

    name, split, rows = "mbpp_plus", "test", 378
    evalplus_dataset, default_version = "mbpp", "v0.2.0"
    releases = {
        "v0.2.0": ("mbpp_plus/MbppPlus-v0.2.0.jsonl.gz", 378,
                   "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
                   "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63"),
        "v0.1.0": ("mbpp/MbppPlus-v0.1.0.json", 399,
                   "https://github.com/evalplus/mbppplus_release/releases/download/v0.1.0/MbppPlus.jsonl.gz",
                   "57d639e77667d88930052b2b07212011c25c0bab94dfc1f19d15e1f7f558bfa9"),
    }
