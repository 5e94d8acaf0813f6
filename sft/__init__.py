"""prift.sft: token-priority SFT (signals, priority rules, signal sources, reference cache, trainer)."""

if not __name__.startswith("prift."):  # a bare import from the checkout: a second copy of every registry
    raise ImportError(f"import prift.{__name__}, not {__name__}: the stage folders install as prift.* packages")

