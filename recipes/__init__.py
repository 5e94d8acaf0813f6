"""prift.recipes: YAML recipes and the pipeline that chains the stages."""

if not __name__.startswith("prift."):  # a bare import from the checkout: a second copy of every registry
    raise ImportError(f"import prift.{__name__}, not {__name__}: the stage folders install as prift.* packages")

