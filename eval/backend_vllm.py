"""The vLLM backend (optional extra ``prift[vllm]``): one ``vllm.LLM``, ``LLM.generate`` with ``SamplingParams``.

Thin on purpose: n, temperature, top_p, max_tokens, a per-prompt seed (``seed + index``), stop strings and stop
token ids map one to one onto ``SamplingParams``; vLLM excludes the stop string from the text, as the HF backend
does. ``generation_config`` is the checkpoint's (``generation_config.json``), read by transformers.
Several GPUs: ``tensor_parallel_size`` (one model across GPUs). vLLM is imported only when this backend is built.
"""

from __future__ import annotations

from collections.abc import Sequence

from prift.eval.backends import BACKENDS, Generation, Sampling
from prift.models.chat import load_generation_config
from prift.models.loading import resolve_model_path


@BACKENDS.register("vllm")
class VLLMBackend:
    def __init__(self, model: str, *, dtype: str = "auto", tensor_parallel_size: int | None = None,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, seed: int = 0,
                 **_ignored) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError("the vllm backend needs vLLM: pip install 'prift[vllm]'") from exc
        import torch

        self.vllm = vllm
        self.settings = {
            "model": resolve_model_path(model), "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size or max(1, torch.cuda.device_count()),
            "gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len, "seed": seed,
        }
        self.llm = vllm.LLM(**{k: v for k, v in self.settings.items() if v is not None})
        self.generation_config = load_generation_config(model)

    def describe(self) -> dict:
        return {"backend": "vllm", "vllm": self.vllm.__version__, **self.settings}

    def generate(self, prompts: Sequence[str], counts: Sequence[int], sampling: Sampling,
                 seed: int) -> list[list[Generation]]:
        todo = [i for i, c in enumerate(counts) if c > 0]
        params = [self.vllm.SamplingParams(n=counts[i], temperature=sampling.temperature, top_p=sampling.top_p,
                                           max_tokens=sampling.max_tokens, seed=seed + i,
                                           stop=list(sampling.stop) or None,
                                           stop_token_ids=list(sampling.stop_token_ids) or None) for i in todo]
        outputs = self.llm.generate([prompts[i] for i in todo], params, use_tqdm=False) if todo else []
        results: list[list[Generation]] = [[] for _ in prompts]
        for i, request in zip(todo, outputs, strict=True):
            results[i] = [Generation(o.text, len(o.token_ids), "length" if o.finish_reason == "length" else "stop")
                          for o in request.outputs]
        return results
