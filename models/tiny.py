"""Tiny randomly initialised causal LMs (Qwen2 or Llama) with a small trained byte-level BPE tokenizer.

For fast unit tests: a model of a few hundred thousand parameters with a real ChatML chat template, saved as a
normal HF checkpoint so every code path (from_pretrained, SFTTrainer, generation) sees what it would see with a
pretrained model. Built entirely offline.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "What is 47 + 38? 47 + 38 = 85. The answer is \\boxed{85}.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) { } #### $ % .",
    "user assistant system Question: Answer: def f(x): return x * 2",
]


def tiny_tokenizer(vocab_size: int = 384):
    """A byte-level BPE tokenizer trained on a few built-in lines, with ChatML specials; eos = pad = <|im_end|>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token=None, unk_token=None
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_causal_lm(arch: str = "qwen2", vocab_size: int = 384, seed: int = 0, hidden_size: int = 32):
    """A randomly initialised 2-layer model of the given architecture (`qwen2` or `llama`)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    configs = {"qwen2": Qwen2Config, "llama": LlamaConfig}
    if arch not in configs:
        raise ValueError(f"unknown tiny architecture {arch!r}; valid: {', '.join(configs)}")
    config = configs[arch](
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        eos_token_id=2, pad_token_id=2, bos_token_id=None,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def save_tiny_checkpoint(path: str | Path, arch: str = "qwen2", seed: int = 0, vocab_size: int = 384) -> Path:
    """Write a tiny model + tokenizer as a plain HF checkpoint folder and return it."""
    path = Path(path)
    tokenizer = tiny_tokenizer(vocab_size)
    model = tiny_causal_lm(arch, vocab_size=len(tokenizer), seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
