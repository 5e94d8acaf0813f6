"""The transformers backend: batched, left-padded ``model.generate`` (CPU or one GPU).

Prompts of one call are generated in micro-batches of ``batch_size`` sequences (the eval runner hands them over
longest prompt first, lm-eval's order), each prompt with
``num_return_sequences`` = its count (prompts with different counts go in separate groups). Greedy decoding
generates once per prompt and repeats the result, through :mod:`prift.eval.greedy_hf` (``generate``'s greedy
search, each row leaving the batch once it stops) unless the model's generation config asks for more. ``sampling.stop_token_ids`` (when given) are ``generate``'s
``eos_token_id`` list; stop strings use transformers' ``stop_strings`` criterion and are then cut from the text.
``torch.manual_seed(seed)`` before each call makes a call reproducible on its own, so a
resumed run regenerates a batch exactly as the first run would have. ``loglikelihood`` scores (context,
continuation) pairs for ``--mc_scoring loglik``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from prift.eval.backends import BACKENDS, Generation, Sampling, cut_at_stop
from prift.eval.greedy_hf import greedy_rows, mask_positions, plain_greedy
from prift.models.loading import load_causal_lm, load_tokenizer, resolve_dtype, resolve_model_path


@BACKENDS.register("hf")
class HFBackend:
    def __init__(self, model: str, *, dtype: str = "auto", device: str | None = None, batch_size: int = 8,
                 attn_implementation: str | None = None, **_ignored) -> None:
        self.model_name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = resolve_dtype(dtype)
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.padding_side = "left"
        self.model = load_causal_lm(model, self.dtype, self.device, attn_implementation).eval()
        self.batch_size = max(1, batch_size)

    @property
    def generation_config(self):
        return self.model.generation_config

    @classmethod
    def in_memory(cls, model, tokenizer, name: str, batch_size: int = 8) -> HFBackend:
        """A backend over a model already in memory (RL validation: the policy being trained, on its own device)."""
        import copy

        self = cls.__new__(cls)
        self.model_name, self.model, self.batch_size = name, model, max(1, batch_size)
        self.device, self.dtype = str(model.device), model.dtype
        self.tokenizer = copy.copy(tokenizer)
        self.tokenizer.padding_side = "left"
        return self

    def describe(self) -> dict:
        import transformers

        return {"backend": "hf", "model_path": resolve_model_path(self.model_name), "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."), "batch_size": self.batch_size,
                "attn_implementation": self.model.config._attn_implementation,
                "transformers": transformers.__version__, "torch": torch.__version__}

    def generate(self, prompts: Sequence[str], counts: Sequence[int], sampling: Sampling,
                 seed: int) -> list[list[Generation]]:
        torch.manual_seed(seed)
        results: list[list[Generation]] = [[] for _ in prompts]
        per_prompt = 1 if sampling.greedy else None
        groups: dict[int, list[int]] = {}
        for i, count in enumerate(counts):
            if count > 0:
                groups.setdefault(per_prompt or count, []).append(i)
        for returns, indices in groups.items():
            step = max(1, self.batch_size // returns)
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                outputs = self._generate([prompts[i] for i in chunk], returns, sampling)
                for j, i in enumerate(chunk):
                    samples = outputs[j * returns : (j + 1) * returns]
                    results[i] = samples * counts[i] if sampling.greedy else samples
        return [[Generation(g.text, g.tokens, g.finish_reason) for g in r] for r in results]

    def _add_special_tokens(self, prompt: str) -> bool:
        bos = self.tokenizer.bos_token
        return not (bos and prompt.startswith(bos))

    @torch.no_grad()
    def _generate(self, prompts: list[str], returns: int, sampling: Sampling) -> list[Generation]:
        tok = self.tokenizer
        batch = tok(prompts, return_tensors="pt", padding=True,
                    add_special_tokens=self._add_special_tokens(prompts[0])).to(self.device)
        kwargs = dict(max_new_tokens=sampling.max_tokens, num_return_sequences=returns, pad_token_id=tok.pad_token_id,
                      do_sample=not sampling.greedy)
        if not sampling.greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=tok)
        if sampling.stop_token_ids:
            kwargs.update(eos_token_id=list(sampling.stop_token_ids))
        eos = ({tok.eos_token_id, tok.pad_token_id} | set(_as_list(self.model.generation_config.eos_token_id))
               | set(sampling.stop_token_ids)) - {None}
        if sampling.greedy and plain_greedy(self.model):  # same text as generate's, without its finished rows
            rows = greedy_rows(self.model, batch, sampling.max_tokens, eos, sampling.stop, tok.decode)
        else:
            out = self.model.generate(**batch, **kwargs)
            rows = out[:, batch["input_ids"].shape[1] :].tolist()
        generations = []
        for row in rows:
            length = next((i for i, t in enumerate(row) if t in eos), len(row))
            text, stopped = cut_at_stop(tok.decode(row[:length], skip_special_tokens=True), sampling.stop)
            finished = stopped or length < len(row)
            generations.append(Generation(text, length, "stop" if finished else "length"))
        return generations


    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair`` for causal models: trailing whitespace of ``context`` moves to the
        continuation; the continuation's tokens are those of ``tokenize(context + continuation)`` past the length
        of ``tokenize(context)`` (so a merge across the boundary is scored as the whole text tokenizes)."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        special = self._add_special_tokens(context)
        whole = self.tokenizer(context + continuation, add_special_tokens=special)["input_ids"]
        split = len(self.tokenizer(context, add_special_tokens=special)["input_ids"])
        return whole[:split], whole[split:]

    @torch.no_grad()
    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """``log P(continuation | context)`` of each pair: the sum over the continuation's tokens of
        ``log_softmax(logits)`` at the preceding position, from one forward of ``context + continuation[:-1]``.
        Pairs with the same forward input (a multiple-choice problem's one-token choices) share one forward, as
        lm-eval's context grouping does. Inputs go longest first in left-padded micro-batches of ``batch_size``
        with position ids from the attention mask, so every row ends at the last column and only the last
        ``max(len(continuation))`` positions go through the LM head and the softmax."""
        encoded = [self.encode_pair(c, x) for c, x in pairs]
        if any(not ctx or not cont for ctx, cont in encoded):
            raise ValueError("loglikelihood needs a non-empty context and continuation (in tokens)")
        readers: dict[tuple[int, ...], list[int]] = {}  # forward input -> the pairs scored from it
        for i, (ctx, cont) in enumerate(encoded):
            readers.setdefault(tuple(ctx + cont[:-1]), []).append(i)
        inputs = sorted(readers, key=len, reverse=True)
        out = [0.0] * len(encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(inputs), self.batch_size):
            seqs = inputs[start : start + self.batch_size]
            width, keep = max(map(len, seqs)), max(len(encoded[i][1]) for s in seqs for i in readers[s])
            ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in seqs], device=self.device)
            mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=mask_positions(mask),
                                logits_to_keep=keep).logits[:, -keep:]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, seq in enumerate(seqs):
                for i in readers[seq]:
                    cont = torch.tensor(encoded[i][1], device=self.device)
                    out[i] = logprobs[row, keep - len(cont):].gather(-1, cont[:, None]).sum().item()
        return out


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
