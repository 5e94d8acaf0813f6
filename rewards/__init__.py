"""prift.rewards: verifiers shared by RL rewards and evaluation, so both always grade an answer the same way.

- :mod:`~prift.rewards.math`: ``math_equal(gold, pred)``, ``grade(completion, gold)`` and batch ``check_many`` /
  ``grade_many`` (numeric fast path, then math-verify in killable worker processes: :mod:`.math_workers`);
  answer extraction and the fast path live in :mod:`.answers`.
- :mod:`~prift.rewards.choice`: ``extract_choice(completion, letters="ABCD")``.
- :mod:`~prift.rewards.sandbox`: ``run_tests(program, tests, timeout_s=, memory_mb=)`` and batch ``run_many``;
  test formats and code extraction in :mod:`.code`; the grader/program split in :mod:`.sandbox_runner`, launched by
  :mod:`.sandbox_launch` (forked from :mod:`.sandbox_zygote`); isolation layers in :mod:`.isolation`,
  :mod:`.sandbox_cgroups` (per-run cgroup) and :mod:`.sandbox_seccomp` (syscall filter).
- :mod:`~prift.rewards.registry` / :mod:`.functions`: TRL-signature rewards looked up by name or dotted path.

Imports nothing else of prift.
"""

if not __name__.startswith("prift."):  # a bare import from the checkout: a second copy of every registry
    raise ImportError(f"import prift.{__name__}, not {__name__}: the stage folders install as prift.* packages")

