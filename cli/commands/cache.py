"""`prift cache`: build the reference-signal cache of an SFT configuration ahead of training.

    prift cache --model_name_or_path Qwen/Qwen2.5-Math-1.5B --dataset AI-MO/NuminaMath-CoT --max_samples 100000 \
        --max_length 2048 [--reference_model ...] [--reference_cache_dir /shared/prift-cache]

Takes exactly the options of `prift sft` (a `--config` YAML too). The cache is keyed by the reference weights, dtype,
tokenizer, chat template, max_length and tokenized data, not by the method, so one build serves every
reference-fed variant (prift_prob, prift_mass, rho1, ...) and every rerun; `prift sft` with the same settings finds it
complete and trains at plain-SFT cost. Under `accelerate launch` the ranks split the shards. A killed build resumes
from its finished shards. Prints the cache folder, its key and the build time.
"""

from __future__ import annotations

import json
import sys
import time

from prift.core.config import ConfigError, parse_config


def main(argv: list[str]) -> int:
    from prift.sft.config import PriftSFTConfig
    from prift.sft.train import build_reference_cache

    try:
        config = parse_config(PriftSFTConfig, argv, prog="prift cache", description=__doc__)
        started = time.time()
        built = build_reference_cache(config)
    except (ConfigError, OSError, ValueError) as err:  # DatasetError: ValueError; disk, permission: OSError
        print(f"prift cache: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    build = built["build"]
    how = "reused (already complete)" if build is None else f"built in {time.time() - started:.0f} s"
    print(f"\n[prift] reference cache {how}: {built['dir']}")
    print(f"  key {built['key']}, {built['rows']} rows, reference {built['reference']}")
    if build:
        print(f"  build: {json.dumps(build)}")
    return 0
