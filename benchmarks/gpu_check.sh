#!/usr/bin/env bash
# One-GPU check, offline, in under 8 minutes: the GPU tests, bf16 SFT step/memory ratios (cached and live reference,
# benchmarks/sft_step.py at small sizes; dtype auto = bf16 on a bf16-capable GPU) and HF-generate eval throughput
# (benchmarks/eval_throughput.py), all on the embedded SmolLM2-135M and the tests' tiny models; writes one JSON.
#
#   bash benchmarks/gpu_check.sh [--out gpu_check.json] [--python .venv/bin/python]
#
# Budget (H100/H200-class estimate, not measured here): GPU tests ~3 min, SFT ratios ~2 min, eval throughput ~1 min.
# Exits 1 with one line when no CUDA device is visible. Each step's raw output is kept beside the JSON (*.log).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=gpu_check.json
PY=.venv/bin/python
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (valid: --out FILE, --python PATH)" >&2; exit 2 ;;
  esac
done
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check.sh: no CUDA device visible to $PY (torch.cuda.is_available() is False): nothing measured" >&2
  exit 1
fi
LOGS="${OUT%.json}"
"$PY" benchmarks/sft_step.py --help >/dev/null  # argument parsing of both scripts before any minute is spent
"$PY" benchmarks/eval_throughput.py --help >/dev/null
set +e
timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/*_gpu.py > "$LOGS.tests.log" 2>&1; TESTS_RC=$?
timeout 150 "$PY" benchmarks/sft_step.py --rounds 2 --steps 3 --rows 24 --batch 4 --max-length 256 \
  > "$LOGS.sft_step.log" 2>&1; SFT_RC=$?
timeout 90 "$PY" benchmarks/eval_throughput.py --problems 32 --max_tokens 64 --batch_size 16 \
  > "$LOGS.eval_throughput.log" 2>&1; EVAL_RC=$?
set -e
"$PY" - "$OUT" "$LOGS" "$TESTS_RC" "$SFT_RC" "$EVAL_RC" <<'PYEOF'
import json, re, sys
import torch
out, logs, tests_rc, sft_rc, eval_rc = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
tests = open(f"{logs}.tests.log").read()
sft = open(f"{logs}.sft_step.log").read()
ev = open(f"{logs}.eval_throughput.log").read()
ratios = {}  # | variant | step time (s) | step / NLL | peak memory (GiB) | memory / NLL |
for row in re.findall(r"^\| (.+?) \| ([\d.]+) \| ([\d.]+) \| (.*) \|$", sft, re.M):
    name, step, step_ratio, memory = row
    cells = [c.strip() for c in memory.split("|")]
    ratios[name] = {"step_s": float(step), "step_vs_nll": float(step_ratio),
                    "peak_gib": float(cells[0]) if cells and re.fullmatch(r"[\d.]+", cells[0]) else None,
                    "memory_vs_nll": float(cells[1]) if len(cells) > 1 and re.fullmatch(r"[\d.]+", cells[1]) else None}
throughput = {label.strip(): {"samples_per_s": float(s), "tokens_per_s": float(t)}
              for label, s, t in re.findall(r"^  (.+?)\s+([\d.]+) samples/s\s+([\d.]+) tokens/s", ev, re.M)}
summary = re.findall(r"^=*\s*(\d+ passed.*?|.*failed.*?) in [\d.]+s", tests, re.M)
report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
          "gpu_tests": {"rc": tests_rc, "summary": summary[-1] if summary else None},
          "sft_step_bf16": {"rc": sft_rc, "variants": ratios},
          "eval_throughput": {"rc": eval_rc, "runs": throughput}}
json.dump(report, open(out, "w"), indent=2)
print(f"gpu_check: wrote {out} (tests rc {tests_rc}, sft_step rc {sft_rc}, eval_throughput rc {eval_rc})")
sys.exit(1 if tests_rc or sft_rc or eval_rc else 0)
PYEOF
