"""LiveCodeBench graded as LiveCodeBench's runner grades it (``prift.eval.bench_lcb``).

Every expected verdict below follows from lcb_runner's source (LiveCodeBench/LiveCodeBench@28fef95,
``lcb_runner/evaluation/testing_util.py``), and each was confirmed by running lcb_runner's own
``check_correctness`` on the same program and tests; none is read off prift's grader. The sample's solutions are the
independent ones of ``test_sandbox_benchmarks_cpu.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import zlib

import pytest

from prift.core.paths import data_root
from prift.eval.bench_lcb import DEFAULT_TIMEOUT, HUB_ID, RELEASES, lcb_extract_code, lcb_tests
from prift.eval.benchmarks import get_benchmark, read_jsonl
from prift.eval.config import EvalConfig
from prift.eval.grading import GradingSettings, grade
from prift.rewards.code import functional_tests
from prift.rewards.sandbox import SandboxConfig, run_many

DATA = data_root()
needs_data = pytest.mark.skipif(DATA is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")
SETTINGS = GradingSettings(sandbox=SandboxConfig(timeout_s=60.0, workers=2))
# LeetCode style: List and defaultdict come from lcb_runner's import_string, not from the program
LEETCODE = """class Solution:
    def topK(self, nums: List[int], k: int) -> List[int]:
        count = defaultdict(int)
        for x in nums:
            count[x] += 1
        return [x for x, _ in sorted(count.items(), key=lambda item: (-item[1], item[0]))[:k]]
"""
LEETCODE_TESTS = [("[1,1,2,3,3,3]\n2", "[3, 1]"), ("[5]\n1", "[5]"), ("[2,2,1,1]\n1", "[1]")]


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```\n"


def lcb_row(qid: str, tests: list[tuple[str, str]], fn_name: str | None = None, date: str = "2025-01-01T00:00:00",
            encode_private: bool = True) -> dict:
    """A row in the code_generation_lite schema: the first test public, the others private (base64/zlib/pickle as
    in the later hub files, or plain JSON as in the earliest)."""
    kind = "functional" if fn_name else "stdin"
    cases = [{"input": i, "output": o, "testtype": kind} for i, o in tests]
    private = json.dumps(cases[1:])
    if encode_private:
        private = base64.b64encode(zlib.compress(pickle.dumps(private))).decode()
    return {"question_title": qid, "question_content": f"Problem {qid}.", "platform": "leetcode" if fn_name else
            "atcoder", "question_id": qid, "contest_id": "c", "contest_date": date, "difficulty": "easy",
            "starter_code": f"class Solution:\n    def {fn_name}(self):\n        " if fn_name else "",
            "public_test_cases": json.dumps(cases[:1]), "private_test_cases": private,
            "metadata": json.dumps({"func_name": fn_name} if fn_name else {})}


def grade_rows(cases: list[tuple[dict, str]], **settings) -> list[tuple[str, int, str]]:
    """(status, tests passed, detail) of each (row, completion) through the eval grading path."""
    bench = get_benchmark("livecodebench", **settings)
    problems = [bench.to_problem(row, i) for i, (row, _) in enumerate(cases)]
    grades = grade(bench, problems, [completion for _, completion in cases], SETTINGS)
    return [(g.status, g.extra.get("passed"), g.detail) for g in grades]


@needs_data
def test_sample_independent_solutions_pass_and_wrong_ones_stop_at_the_first_failure():
    from test_sandbox_benchmarks_cpu import LCB_SOLUTIONS

    bench = get_benchmark("livecodebench")
    loaded = bench.load()
    problems = loaded.problems
    assert sorted(p.id for p in problems) == sorted(LCB_SOLUTIONS) and sum(p.meta["tests"] for p in problems) == 341
    good = grade(bench, problems, [fenced(LCB_SOLUTIONS[p.id]) for p in problems], SETTINGS)
    assert [(p.id, g.status, g.detail) for p, g in zip(problems, good, strict=True) if g.status != "correct"] == []
    assert [g.extra["passed"] for g in good] == [g.extra["total"] for g in good] == [p.meta["tests"] for p in problems]
    # printing the first test's answer passes that test and fails the next, where lcb_runner stops (1 of 42..44)
    first = {row["question_id"]: lcb_tests(row)[0]["output"] for row in read_jsonl(DATA / bench.files[0])}
    wrong = grade(bench, problems, [fenced(f"print({first[p.id]!r})") for p in problems], SETTINGS)
    assert [(g.status, g.extra["passed"]) for g in wrong] == [("wrong", 1)] * len(problems)
    sample = DATA / "livecodebench" / "release_v6-easy8.jsonl"
    assert loaded.sources == [{"path": str(sample), "sha256": hashlib.sha256(sample.read_bytes()).hexdigest(),
                               "release": None, "rows": 8, "contest_dates": ["2025-01-04T00:00:00",
                                                                             "2025-04-05T00:00:00"]}]


STDIO_IN, STDIO_OUT = "1\n2\n", "3\n"
# (program, lcb_runner's verdict on input "1\n2\n" with expected output "3\n"); each would pass as a plain script
# run on that stdin unless marked otherwise, so the wrong ones fail only by lcb_runner's harness
STDIO_PROGRAMS = [
    ("a = int(input())\nb = int(input())\nprint(a + b)\nexit()", "correct"),
    ("print(3)\nimport sys\nsys.exit(1)", "correct"),  # call_method swallows SystemExit whatever its code
    ('def main():\n    print(int(input()) + int(input()))\n\nif __name__ == "__main__":\n    main()', "correct"),
    ("from sys import stdin\nprint(int(stdin.readline()) + int(stdin.readline()))", "correct"),
    ("import sys\nprint(sum(map(int, sys.stdin.read().split())))", "correct"),
    ("print(3)\nquit()", "wrong"),  # reliability_guard: builtins.quit = None
    ("import sys\nprint(sum(int(line) for line in sys.stdin))", "wrong"),  # MockStdinWithBuffer is not iterable
    ("import sys\ninput = sys.stdin.buffer.readline\nprint(int(input()) + int(input()))", "wrong"),  # 1 + 1
    ("print(sum(map(int, open(0).read().split())))", "wrong"),  # import_string's `open` reads the real stdin
    ("total = 0\ndef add(x):\n    global total\n    total += x\nadd(3)\nprint(total)", "wrong"),  # in wrapped_function
    ("import sys\nsys.stdout.buffer.write(b'3\\n')", "wrong"),  # stdout is a StringIO
]


def test_stdin_programs_run_under_lcb_runners_harness():
    rows = [(lcb_row(f"s{i}", [(STDIO_IN, STDIO_OUT)]), fenced(code)) for i, (code, _) in enumerate(STDIO_PROGRAMS)]
    rows.append((lcb_row("nofence", [(STDIO_IN, STDIO_OUT)]), "print(3)"))  # extract_code: no fences, no program
    verdicts = [status for status, _, _ in grade_rows(rows)]
    assert verdicts == [verdict for _, verdict in STDIO_PROGRAMS] + ["wrong"]


# (printed, expected output, lcb_runner's verdict): stripped lines, then whitespace-separated Decimals
OUTPUTS = [
    ("3   \\n\\n\\n", "3", "correct"),
    ("1\\r\\n2", "1\n2\n", "correct"),
    ("0.50 1e2 +3", "0.5 100 3", "correct"),
    ("1    2", "1 2", "correct"),
    ("", "", "correct"),
    ("0.3333333", "0.333333", "wrong"),  # within 1e-6, but not the same Decimal
    ("1 2", "1\n2", "wrong"),  # line structure counts
    ("1\\n2", "1 2", "wrong"),
    ("1\\n\\n2", "1\n2", "wrong"),  # an inner blank line is a line
    ("Yes", "yes", "wrong"),
    ("", "0", "wrong"),
    ("nan", "nan", "correct"),  # equal text; as Decimals NaN != NaN
    ("nan", "NaN", "wrong"),
]


def test_output_comparison_is_lcb_runners():
    rows = [(lcb_row(f"o{i}", [("x", expected)]), fenced(f"print('{printed}', end='')"))
            for i, (printed, expected, _) in enumerate(OUTPUTS)]
    assert [status for status, _, _ in grade_rows(rows)] == [verdict for _, _, verdict in OUTPUTS]


def test_call_based_problems_as_lcb_runner_calls_them():
    def method(body: str, name: str = "f") -> str:
        return f"class Solution:\n    def {name}(self, a):\n        {body}\n"

    cases = [
        (LEETCODE, LEETCODE_TESTS, "topK", ("correct", 3)),
        (LEETCODE.replace("[:k]", "[:1]"), LEETCODE_TESTS[1:] + LEETCODE_TESTS[:1], "topK", ("wrong", 2)),
        (method("return (a, a)"), [("1", "[1, 1]")], "f", ("correct", 1)),  # a tuple result becomes a list
        (method("return [(a, a)]"), [("1", "[[1, 1]]")], "f", ("wrong", 0)),  # ... only at the top level
        (method("return a / 3"), [("1", "0.333333")], "f", ("wrong", 0)),  # == on floats, no tolerance
        (method("return a * 1.0"), [("2", "2")], "f", ("correct", 1)),
        (method("self.n = getattr(self, 'n', 0) + 1\n        return self.n"), [("0", "1"), ("0", "2")], "f",
         ("correct", 2)),  # one Solution() for all tests
        ("def f(a, b):\n    return b * a\n", [('2\n"ab"', '"abab"')], "f", ("correct", 1)),  # no class Solution
        (method("return a", "g"), [("2", "2")], "f", ("wrong", 0)),
        (method("quit()"), [("2", "2")], "f", ("wrong", 0)),
    ]
    rows = [(lcb_row(f"c{i}", tests, fn, encode_private=i % 2 == 0), fenced(code))
            for i, (code, tests, fn, _) in enumerate(cases)]
    assert [result[:2] for result in grade_rows(rows)] == [expected for *_, expected in cases]
    # without lcb_runner's import_string the LeetCode program is a NameError (the sandbox's functional kind)
    inputs, outputs = map(list, zip(*LEETCODE_TESTS, strict=True))
    plain = run_many([LEETCODE], [functional_tests("topK", inputs, outputs)], SETTINGS.sandbox)[0]
    assert plain.status == "failed" and "NameError" in plain.detail


def test_a_test_slower_than_the_per_test_timeout_ends_the_problem_as_a_timeout():
    assert get_benchmark("livecodebench").settings["timeout"] == DEFAULT_TIMEOUT == EvalConfig().lcb_timeout == 6
    tests = [("a", "a"), ("slow", "slow"), ("c", "c")]
    rows = [
        (lcb_row("sleep", tests), fenced("import time\ns = input()\nif s == 'slow':\n    time.sleep(5)\nprint(s)")),
        (lcb_row("spin", tests), fenced("s = input()\nwhile s == 'slow':\n    pass\nprint(s)")),
        (lcb_row("fast", tests), fenced("print(input())")),
        (lcb_row("compile", [("1", "1")], "f"), fenced("import time\ntime.sleep(5)\ndef f(a):\n    return a")),
    ]
    results = grade_rows(rows, timeout=2)
    assert [r[:2] for r in results] == [("timeout", 1), ("timeout", 1), ("correct", 3), ("timeout", 0)]
    assert "no answer within 2 s" in results[0][2]
    bench = get_benchmark("livecodebench", timeout=2)
    assert bench.sandbox_limits(bench.to_problem(rows[0][0], 0)) == {"timeout_s": (2 + 1) * 3 + 5}


def test_code_extraction_is_lcb_runners():
    assert lcb_extract_code("```python\na = 1\n```\nor\n```python\nb = 2\n```") == "b = 2"
    assert lcb_extract_code("```cpp\nint x;\n```") == "int x;"
    assert lcb_extract_code("so ```python here\nc = 3\n```") == "c = 3"
    assert lcb_extract_code("print(1)") == lcb_extract_code("```python\nprint(1)") == ""


def _release_folder(tmp_path, write_jsonl):
    folder = tmp_path / "lcb"
    write_jsonl(folder / "test.jsonl", [lcb_row("p1", [("1\n", "1")], date="2023-05-01T00:00:00"),
                                        lcb_row("p2", LEETCODE_TESTS, "topK", date="2023-06-10T00:00:00",
                                                encode_private=False)])
    write_jsonl(folder / "test2.jsonl", [lcb_row("p3", [("2\n", "2")], date="2024-05-01T12:00:00")])
    return folder


def test_release_selects_the_files_of_the_official_layout(tmp_path, write_jsonl):
    assert RELEASES["release_v3"] == ("test.jsonl", "test2.jsonl", "test3.jsonl")
    assert RELEASES["release_latest"] == RELEASES["release_v6"] == tuple(RELEASES["v1_v6"])
    assert (RELEASES["v1"], RELEASES["v4"], RELEASES["v2_v4"]) == (
        ("test.jsonl",), ("test4.jsonl",), ("test2.jsonl", "test3.jsonl", "test4.jsonl"))
    assert len(RELEASES) == 6 + 1 + 6 + 15
    folder = _release_folder(tmp_path, write_jsonl)

    def load(**settings):
        bench = get_benchmark("livecodebench", data_path=str(folder), **settings)
        loaded = bench.load()
        return [p.id for p in loaded.problems], bench.rows, loaded.sources

    ids, rows, sources = load(release="release_v1")
    assert (ids, rows) == (["p1", "p2"], 400)
    assert sources == [{"path": str(folder / "test.jsonl"), "release": "release_v1", "rows": 2,
                        "sha256": hashlib.sha256((folder / "test.jsonl").read_bytes()).hexdigest(),
                        "contest_dates": ["2023-05-01T00:00:00", "2023-06-10T00:00:00"]}]
    assert load(release="v2")[:2] == (["p3"], 111)
    assert load(release="release_v2")[:2] == load(release="v1_v2")[:2] == (["p1", "p2", "p3"], 511)
    assert [s["path"] for s in load(release="release_v2")[2]] == [str(folder / "test.jsonl"), str(folder / "test2.jsonl")]
    # the contest-date window as load_code_generation_dataset applies it: both ends at midnight
    window = load(release="release_v2", start_date="2023-06-10", end_date="2024-05-01")
    assert window[0] == ["p2"] and [s["rows"] for s in window[2]] == [1, 0]
    assert load(release="release_v2", start_date="2023-06-10", end_date="2024-05-02")[0] == ["p2", "p3"]
    one_file = get_benchmark("livecodebench", data_path=str(folder / "test2.jsonl"))
    assert [p.id for p in one_file.load().problems] == ["p3"] and one_file.rows is None


def test_absent_data_names_the_files_to_download_and_where(tmp_path, write_jsonl):
    folder = _release_folder(tmp_path, write_jsonl)
    with pytest.raises(FileNotFoundError) as missing:
        get_benchmark("livecodebench", data_path=str(folder), release="release_v6").load()
    message = str(missing.value)
    assert "missing: test3.jsonl, test4.jsonl, test5.jsonl, test6.jsonl" in message
    assert HUB_ID in message and str(folder) in message
    with pytest.raises(FileNotFoundError, match="missing: test3.jsonl"):  # a folder alone means release_latest
        get_benchmark("livecodebench", data_path=str(folder)).load()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as no_sample:
        get_benchmark("livecodebench", empty).load()
    assert all(part in str(no_sample.value) for part in ("release_v6-easy8.jsonl", HUB_ID, "test6.jsonl",
                                                          "--lcb_data_path", "--lcb_release"))
    with pytest.raises(FileNotFoundError) as no_release:
        get_benchmark("livecodebench", empty, release="v6").load()
    assert str(empty / "livecodebench" / "code_generation_lite") in str(no_release.value)
    with pytest.raises(ValueError, match="unknown release 'release_v7'; valid: release_v1"):
        EvalConfig(benchmarks="livecodebench", lcb_release="release_v7")
    with pytest.raises(ValueError, match="start_date must be YYYY-MM-DD"):
        get_benchmark("livecodebench", start_date="2024/01/01")


def test_results_json_records_release_files_and_window(tmp_path, write_jsonl):
    from prift.eval.backends import Generation
    from prift.eval.runner import evaluate
    from prift.models.tiny import tiny_tokenizer

    folder = _release_folder(tmp_path, write_jsonl)
    solutions = {"p1": "print(input())", "p2": LEETCODE, "p3": "print(input())"}

    plain = tiny_tokenizer()
    plain.chat_template = None  # prompts as plain text; a real tokenizer, since eval records its stop tokens

    class Canned:
        tokenizer = plain

        def generate(self, prompts, counts, sampling, seed):
            ids = [next(q for q in solutions if f"Problem {q}." in prompt) for prompt in prompts]
            return [[Generation(fenced(solutions[i]), 1, "stop")] * n for i, n in zip(ids, counts, strict=True)]

        def describe(self):
            return {"backend": "canned"}

    config = EvalConfig(benchmarks="livecodebench", lcb_release="release_v2", lcb_data_path=str(folder),
                        lcb_start_date="2023-06-01", output_dir=str(tmp_path / "run"), progress=False,
                        sandbox_timeout_s=60)
    result = json.loads(evaluate(config, backend=Canned()).read_text())["results"]["livecodebench"]
    assert result["benchmark_settings"] == {"release": "release_v2", "data_path": str(folder),
                                            "start_date": "2023-06-01", "end_date": None, "timeout": 6.0}
    assert [(s["path"], s["release"], s["rows"]) for s in result["data"]] == [
        (str(folder / "test.jsonl"), "release_v2", 1), (str(folder / "test2.jsonl"), "release_v2", 1)]
    assert all(s["sha256"] == hashlib.sha256(open(s["path"], "rb").read()).hexdigest() for s in result["data"])
    assert (result["rows_documented"], result["rows_loaded"], result["metrics"]["pass@1"]["value"]) == (511, 2, 1.0)
