"""prift.models: model and tokenizer loading (hub id, local path, embedded SmolLM2), tiny test models, hardware."""

if not __name__.startswith("prift."):  # a bare import from the checkout: a second copy of every registry
    raise ImportError(f"import prift.{__name__}, not {__name__}: the stage folders install as prift.* packages")

