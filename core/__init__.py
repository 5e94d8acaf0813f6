"""prift.core: the foundation every stage shares: recipe/config parsing, registries, paths, provenance, data files,
disk checks (and the dataset registry)."""

if not __name__.startswith("prift."):  # a bare import from the checkout: a second copy of every registry
    raise ImportError(f"import prift.{__name__}, not {__name__}: the stage folders install as prift.* packages")
