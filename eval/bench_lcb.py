"""LiveCodeBench code generation (``code_generation_lite``), graded as LiveCodeBench's own runner grades it.

Reference: github.com/LiveCodeBench/LiveCodeBench at commit 28fef95ea8c9f7a547c8329f2cd3d32b92c1fa24 (2025-07-16;
``lcb_runner/evaluation/testing_util.py`` last changed in 16de2a1ef5c07342f6b9782a415cc29cee9ce6e4), and the hub
dataset's loading script ``code_generation_lite.py`` (read as vendored by icip-cas/AutoAlign at commit
cf5c4fd17ded3d0bf116759c5a74042dc991edeb).

Data (``lcb_runner/benchmarks/code_generation.py``, the loading script's ``ALLOWED_FILES``). A release names the
``test*.jsonl`` files of the hub dataset livecodebench/code_generation_lite it covers: ``release_vN`` = test.jsonl,
test2.jsonl .. testN.jsonl (N = 1..6), ``release_latest`` = all six, ``vN`` = that version's file alone,
``vM_vN`` = versions M..N. Setting ``data_path`` is the folder holding them (default
``<data root>/livecodebench/code_generation_lite``) or one jsonl file; ``release`` picks the files (default
``release_latest``, lcb_runner's). With neither set, the 8-problem sample of the shared data is read. Tests =
``public_test_cases`` + ``private_test_cases`` (JSON, else base64 -> zlib -> pickle -> JSON); ``metadata.func_name``
marks a call-based (LeetCode) problem. ``start_date``/``end_date`` (YYYY-MM-DD) keep ``start <= contest_date <= end``
with both dates at midnight, as ``load_code_generation_dataset`` compares them.

Grading (``compute_code_generation_metrics.check_correctness`` -> ``testing_util.run_test``; ``--timeout 6``):

- program = the lines between the last two lines containing three backticks (``utils/extraction_utils.extract_code``,
  chat models), else empty;
- ``reliability_guard()``: ``quit``, ``help`` and the destructive ``os``/``shutil``/``subprocess`` functions are
  None, no memory limit; ``sys.set_int_max_str_digits(50000)``;
- call-based (``grade_call_based``): ``import_string`` + the program, run as module ``tmp_sol``; the method is
  ``Solution().<func_name>`` (one instance for all tests) when the text holds ``class Solution``, else the module's
  function; each input line is one JSON argument; a tuple result becomes a list; passes when ``result == expected``;
- stdin/stdout (``grade_stdio``): a final ``if __name__ == '__main__':`` block is unwrapped, top-level imports go
  after ``import_string`` and the rest becomes ``wrapped_function()``, called per test under ``call_method``'s
  patches (``sys.stdin`` is ``MockStdinWithBuffer``: ``for line in sys.stdin`` fails, ``sys.stdin.buffer.readline``
  repeats the first line; the names ``stdin``, ``stdout`` and ``open`` are the process's own, bound by
  ``import_string`` before the patches) with stdout captured and ``SystemExit`` ending the test normally. Output and
  expected are stripped, split on ``\\n`` and each line stripped; same line count, and every line equal or equal as
  whitespace-separated ``Decimal`` numbers (``0.50`` == ``0.5``; no tolerance);
- ``timeout`` seconds for compiling the program and for each test; the first wrong answer, error or timeout ends the
  problem; solved = every test passed.

How: the program runs in the sandbox (:mod:`prift.rewards.sandbox`) as an ``assert`` spec. The program side is
:data:`HARNESS` (lcb_runner's steps above) plus the extracted code as a string; the test code, run by the trusted
grader, holds the tests, calls the harness once per test (one statement each, with the per-test limit) and compares
there, so the program never sees an expected output. Differences the sandbox imposes: the standard library only
(``python -I -S``: no numpy), ``sandbox_memory_mb`` per process, a call-based result must be plain data (builtin
types, ``Counter``, ``deque``, ...; lcb_runner compares any object with ``==``), the whole run gets lcb_runner's
``(timeout + 1) * tests + 5`` s (:meth:`LiveCodeBench.sandbox_limits`, never below ``--sandbox_timeout_s``), and a
program killed at its limit is a ``timeout`` even where lcb_runner reports the lapse as an error (compiling, or
a program that catches the alarm); either way the problem fails.
"""

from __future__ import annotations

import base64
import json
import pickle
import string
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from prift.core.paths import data_root
from prift.core.provenance import sha256_file
from prift.eval.bench_code import CodeBenchmark
from prift.eval.benchmarks import BENCHMARKS, Loaded, Problem, read_jsonl
from prift.rewards.code import TestSpec

HUB_ID = "livecodebench/code_generation_lite"
SAMPLE = "livecodebench/release_v6-easy8.jsonl"  # 8 release_v6 rows with hidden tests (its SOURCE.md)
RELEASE_FOLDER = "livecodebench/code_generation_lite"  # default folder of the test*.jsonl files under the data root
DEFAULT_TIMEOUT = 6  # seconds per test: lcb_runner's --timeout


def _file(version: int) -> str:
    return "test.jsonl" if version == 1 else f"test{version}.jsonl"


FILE_ROWS = {_file(v): n for v, n in enumerate((400, 111, 101, 101, 167, 175), 1)}  # lcb_runner README: 400 .. 1055
RELEASES: dict[str, tuple[str, ...]] = {
    **{f"release_v{n}": tuple(_file(v) for v in range(1, n + 1)) for n in range(1, 7)},
    "release_latest": tuple(_file(v) for v in range(1, 7)),
    **{f"v{n}": (_file(n),) for n in range(1, 7)},
    **{f"v{a}_v{b}": tuple(_file(v) for v in range(a, b + 1)) for a in range(1, 7) for b in range(a + 1, 7)},
}

LCB_SYSTEM = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
              "generate a correct Python program that matches the specification and passes all tests.")
LCB_STDIN = ("### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
             "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
             "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n```python\n"
             "# YOUR CODE HERE\n```\n\n")
LCB_STARTER = ("### Format: You will use the following starter code to write the solution to the problem and enclose "
               "your code within delimiters.\n```python\n{starter}\n```\n\n")

# testing_util.import_string, verbatim: prepended to every program
IMPORT_STRING = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\n"
    "from bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\n"
    "from itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\n"
    "from json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\n"
    "import itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\n"
    "sys.setrecursionlimit(50000)\n"
)

# The program's side (runs in the sandboxed process; followed by `_lcb_import_string = ...` and `_lcb_code = ...`).
HARNESS = r'''
def _lcb_guard():
    """run_test's reliability_guard() (no memory limit) and compute_code_generation_metrics' int digit limit."""
    import builtins, faulthandler, os, shutil, subprocess, sys
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(50000)
    faulthandler.disable()
    builtins.quit = builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def _lcb_clean_if_name(code):
    import ast
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:
        pass
    return code


def _lcb_make_function(code):
    import ast
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        body = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        arguments = ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])
        function = ast.FunctionDef(name="wrapped_function", args=arguments, body=body, decorator_list=[], lineno=-1)
        return _lcb_import_string + "\n" + ast.unparse(imports) + "\n" + ast.unparse(function)
    except Exception:
        return code


def _lcb_load(fn_name):
    """compile_code after grade_call_based's (fn_name given) or grade_stdio's (None) preparation of the code."""
    global _lcb_method
    import ast, io, types
    _lcb_guard()
    if fn_name is None:
        code, fn_name = _lcb_make_function(_lcb_clean_if_name(_lcb_code)), "wrapped_function"
    else:
        code = _lcb_import_string + "\n\n" + _lcb_code
    module = types.ModuleType("tmp_sol", "")
    exec(code, module.__dict__)
    _lcb_method = getattr(module.Solution() if "class Solution" in code else module, fn_name)


def _lcb_call(args):
    return _lcb_method(*args)


class _LcbStdin:
    """MockStdinWithBuffer."""

    def __init__(self, inputs):
        import io
        self.inputs = inputs
        self._stringio = io.StringIO(inputs)
        self.buffer = _LcbBuffer(inputs)

    def read(self, *args):
        return self.inputs

    def readline(self, *args):
        return self._stringio.readline(*args)

    def readlines(self, *args):
        return self.inputs.split("\n")

    def __getattr__(self, name):
        return getattr(self._stringio, name)


class _LcbBuffer:
    """MockBuffer."""

    def __init__(self, inputs):
        self.inputs = inputs.encode("utf-8")

    def read(self, *args):
        return self.inputs

    def readline(self, *args):
        return self.inputs.split(b"\n")[0] + b"\n"


def _lcb_open(inputs):
    def open(*args, **kwargs):  # mock_open(read_data=inputs); unittest.mock is imported only if this is called
        from unittest import mock
        return mock.mock_open(read_data=inputs)(*args, **kwargs)
    return open


def _lcb_stdio(inputs):
    """Capturing() around call_method(wrapped_function, inputs). unittest.mock enters call_method's decorators
    bottom-up: read, readlines and readline of the stdin of the moment are patched, then sys.stdin and open."""
    import builtins, io, sys
    lines = iter(inputs.split("\n"))
    stdin = sys.stdin
    patches = [(stdin, "read", lambda *args: inputs), (stdin, "readlines", lambda *args: inputs.split("\n")),
               (stdin, "readline", lambda *args: next(lines)), (sys, "stdin", _LcbStdin(inputs)),
               (builtins, "open", _lcb_open(inputs))]
    capture = io.StringIO()
    capture.close = lambda x: 1
    saved, sys.stdout, undo = sys.stdout, capture, []
    try:
        for target, name, value in patches:
            undo.append((target, name, vars(target).get(name, undo)))
            setattr(target, name, value)
        try:
            _lcb_method()
        except SystemExit:
            pass
    finally:
        for target, name, old in reversed(undo):
            if old is undo:
                delattr(target, name)
            else:
                setattr(target, name, old)
        sys.stdout = saved
    return capture.getvalue()
'''

# The grader's side: one statement per test; the first also defines the helpers and compiles the program.
TEST_CODE = string.Template('''\
if True:
    import json as _json
    import sys as _sys
    from decimal import Decimal as _Decimal

    if hasattr(_sys, "set_int_max_str_digits"):
        _sys.set_int_max_str_digits(50000)
    _TESTS = $tests
    _FN_NAME = $fn_name

    def _lines(text):  # get_stripped_lines
        return [line.strip() for line in text.strip().split("\\n")]

    def _decimals(line):  # convert_line_to_decimals
        try:
            return [_Decimal(x) for x in line.split()]
        except Exception:
            return None

    def _test(i):
        given, want = _TESTS[i]
        if _FN_NAME is not None:  # grade_call_based
            got = _lcb_call([_json.loads(line) for line in given.split("\\n")])
            got = list(got) if isinstance(got, tuple) else got
            assert got == _json.loads(want), f"test {i}: wrong answer"
            return
        got = _lcb_stdio(given)  # grade_stdio
        assert type(got) is str, f"test {i}: the output is not text"
        got, want = _lines(got), _lines(want)
        assert len(got) == len(want), f"test {i}: wrong answer: {len(got)} lines, expected {len(want)}"
        for k, (a, b) in enumerate(zip(got, want)):
            if a != b:
                da, db = _decimals(a), _decimals(b)
                assert da is not None and db is not None and da == db, f"test {i}: wrong answer at line {k}"

    _lcb_load(_FN_NAME)
    _test(0)
''')


def release_files(release: str) -> tuple[str, ...]:
    """The ``test*.jsonl`` files of ``release`` (``ValueError`` naming the valid ones)."""
    if release not in RELEASES:
        raise ValueError(f"livecodebench: unknown release {release!r}; valid: {', '.join(RELEASES)}")
    return RELEASES[release]


def download_hint(files: tuple[str, ...] | list[str], folder: Path | str) -> str:
    return (f"download {', '.join(files)} of the hub dataset {HUB_ID} (https://huggingface.co/datasets/{HUB_ID}/tree/"
            f"main) into {folder}, or point --lcb_data_path at the folder holding them (prift reads the files: the "
            "dataset's loading script does not run under current `datasets`)")


def lcb_extract_code(completion: str) -> str:
    """``extract_code`` of lcb_runner for chat models: between the last two lines containing three backticks."""
    lines = completion.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    return "\n".join(lines[fences[-2] + 1 : fences[-1]]) if len(fences) >= 2 else ""


def lcb_tests(row: dict) -> list[dict]:
    """Public then private tests (``CodeGenerationProblem.__post_init__`` / ``get_evaluation_sample``)."""
    private = row["private_test_cases"]
    try:
        private = json.loads(private)
    except ValueError:
        private = json.loads(pickle.loads(zlib.decompress(base64.b64decode(private.encode("utf-8")))))  # noqa: S301
    return json.loads(row["public_test_cases"]) + private


def lcb_test_code(tests: list[dict], fn_name: str | None) -> str:
    """The assert-spec test code for ``tests`` (lcb_runner's comparison; one statement per test)."""
    pairs = [(str(t["input"]), str(t["output"])) for t in tests]
    head = TEST_CODE.substitute(tests=repr(pairs), fn_name=repr(fn_name))
    return head + "".join(f"_test({i})\n" for i in range(1, len(pairs)))


def _day(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"livecodebench: {name} must be YYYY-MM-DD, got {value!r}") from None


@BENCHMARKS.register("livecodebench")
class LiveCodeBench(CodeBenchmark):
    """LiveCodeBench. Generation defaults: lcb_runner (``lcb_runner/runner/parser.py`` at LiveCodeBench/LiveCodeBench
    08b707430b3dcca59554b299657ba00f4e054de2: ``--max_tokens 1200``, ``--temperature 0.2``, ``--top_p 0.95``; its
    ``--n 10`` is left to ``--n``)."""

    generation = {"max_tokens": 1200, "temperature": 0.2, "top_p": 0.95}
    name, split, rows = "livecodebench", "test", 8  # rows: the shared sample's; a release sets its own
    files = (SAMPLE,)
    hub = None  # the hub loading script does not run under current `datasets`: local files only

    @classmethod
    def settings_defaults(cls) -> dict:
        return {"release": None, "data_path": None, "start_date": None, "end_date": None, "timeout": DEFAULT_TIMEOUT}

    def __init__(self, data_dir: str | Path | None = None, **settings: Any) -> None:
        super().__init__(data_dir, **settings)
        release, path = self.settings["release"], self.settings["data_path"]
        self.start, self.end = _day(self.settings["start_date"], "start_date"), _day(self.settings["end_date"], "end_date")
        if not float(self.settings["timeout"]) > 0:
            raise ValueError(f"livecodebench: timeout must be > 0 s, got {self.settings['timeout']!r}")
        if release is not None:
            self.rows = sum(FILE_ROWS[f] for f in release_files(release))
        elif path is not None:
            self.rows = None if Path(path).expanduser().is_file() else sum(FILE_ROWS.values())  # release_latest

    # --- data -------------------------------------------------------------------------------------------
    def data_files(self) -> tuple[str | None, list[Path]]:
        """(release, files to read); ``FileNotFoundError`` naming what to download, and where, when absent."""
        release, path = self.settings["release"], self.settings["data_path"]
        if path is not None and Path(path).expanduser().is_file():
            if release is not None:
                raise ValueError(f"livecodebench: data_path {path!r} is one file; release picks files of a folder")
            return None, [Path(path).expanduser()]
        root = data_root(self.data_dir)
        if release is None and path is None:
            if root is not None and (root / SAMPLE).is_file():
                return None, [root / SAMPLE]
            raise FileNotFoundError(
                f"livecodebench: no data: the 8-problem sample {SAMPLE} is not under the data root ({root}) and no "
                f"release was given. For the benchmark, {download_hint(RELEASES['release_latest'], '<folder>')}, "
                "then pass --lcb_data_path <folder> --lcb_release release_v6 (or another release)")
        release = release or "release_latest"
        names = release_files(release)
        folder = Path(path).expanduser() if path is not None else root / RELEASE_FOLDER if root else None
        missing = list(names) if folder is None else [n for n in names if not (folder / n).is_file()]
        if missing:
            where = folder if folder is not None else "a folder"
            raise FileNotFoundError(f"livecodebench: {release} needs {', '.join(names)}; missing: {', '.join(missing)}"
                                    f" (looked in {where}). {download_hint(missing, where)}")
        return release, [folder / n for n in names]

    def load(self, limit: int | None = None) -> Loaded:
        """Rows of every file of the release in the date window; each source records its file (sha256), the
        release it was read for and the rows and contest dates kept from it (the window is in the settings)."""
        release, files = self.data_files()
        rows, sources = [], []
        for path in files:
            kept = [row for row in read_jsonl(path) if "__error__" in row or self.keep(row)]
            dates = sorted(str(row["contest_date"]) for row in kept if "contest_date" in row)
            sources.append({"path": str(path), "sha256": sha256_file(path), "release": release, "rows": len(kept),
                            "contest_dates": [dates[0], dates[-1]] if dates else None})
            rows += kept
        problems = [self._problem(row, i) for i, row in enumerate(rows)]
        return Loaded(problems[:limit] if limit else problems, sources, len(rows))

    def keep(self, row: dict) -> bool:
        try:
            date = datetime.fromisoformat(str(row["contest_date"]))
        except (KeyError, ValueError):
            return True  # to_problem reports the row
        return (self.start is None or self.start <= date) and (self.end is None or date <= self.end)

    def to_problem(self, row: dict, index: int) -> Problem:
        tests = lcb_tests(row)
        if not tests:
            raise ValueError("no test cases")
        datetime.fromisoformat(row["contest_date"])
        fn_name = json.loads(row["metadata"]).get("func_name")
        spec = TestSpec("assert", lcb_test_code(tests, fn_name), case_timeout_s=float(self.settings["timeout"]))
        question = f"### Question:\n{row['question_content']}\n\n"
        starter = row.get("starter_code") or ""
        fmt = LCB_STARTER.format(starter=starter) if starter else LCB_STDIN
        meta = {"format": fmt, "contest_date": row["contest_date"], "platform": row.get("platform"),
                "difficulty": row.get("difficulty"), "fn_name": fn_name, "tests": len(tests)}
        return Problem(row["question_id"], question, spec, meta)

    # --- prompts and grading ----------------------------------------------------------------------------
    def instruction(self, problem: Problem) -> str:
        return f"{LCB_SYSTEM}\n\n{problem.question}{problem.meta['format']}### Answer: (use the provided format with backticks)\n\n"

    base_prompt = instruction

    def program(self, problem: Problem, completion: str) -> str:
        code = lcb_extract_code(completion)
        return f"{HARNESS}\n_lcb_import_string = {IMPORT_STRING!r}\n_lcb_code = {code!r}\n"

    def sandbox_limits(self, problem: Problem) -> dict:
        """Sandbox limits lcb_runner's own match: its whole-problem limit ``(timeout + 1) * tests + 5`` s
        (``check_correctness``) as the run's wall clock (and so its CPU limit)."""
        return {"timeout_s": (float(self.settings["timeout"]) + 1) * problem.meta["tests"] + 5}
