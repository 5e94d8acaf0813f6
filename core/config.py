"""One config dataclass is both CLI flags and YAML: `prift <stage> --config recipe.yaml --learning_rate 1e-5`.

YAML keys become `--key value` flags placed before the command-line flags, so the command line wins and every
value goes through the same typed argparse conversion (a bad value is rejected with the key's name). Unknown YAML
keys are rejected with the file, the key and the closest valid keys.

One name for one thing in every command (docs/options.md): an old name stays accepted as a deprecated alias, in
flags, YAML files and recipe sections, and says its new name once. A config class lists them as
`renamed_options = {"model": "model_name_or_path"}`, and a bool renamed with the opposite sense as
`negated_options = {"overwrite": "resume"}` (class attributes, not fields: `--help` shows the current names only).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
from pathlib import Path

import yaml
from transformers import HfArgumentParser


class ConfigError(ValueError):
    """A bad recipe or flag, with the key (and file) that caused it."""


class _RaisingParser(HfArgumentParser):
    """argparse that raises `ConfigError` instead of printing usage and exiting."""

    def error(self, message):
        raise ConfigError(message)


def _yaml_to_flags(mapping: dict, valid: dict[str, argparse.Action], source: str) -> list[str]:
    flags: list[str] = []
    for key, value in mapping.items():
        if key not in valid:
            close = difflib.get_close_matches(str(key), list(valid), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}{hint}")
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, dict):
            value = json.dumps(value)
        values = [str(v) for v in value] if isinstance(value, list) and valid[key].nargs in ("+", "*") else [
            json.dumps(value) if isinstance(value, list) else str(value)]
        flags += [f"--{key}", *values]
    return flags


_SAID: set[str] = set()


def _deprecated(old: str, new: str, where: str) -> None:
    if old not in _SAID:
        _SAID.add(old)
        print(f"prift: {where}{old!r} is a deprecated name; use {new!r}", file=sys.stderr)


_TRUE = ("true", "yes", "1", "on")


def resolve_aliases(config_type: type, mapping: dict, where: str = "") -> dict:
    """`mapping` (YAML keys) with deprecated names replaced by the current ones (a negated alias flips its bool)."""
    renamed, negated = getattr(config_type, "renamed_options", {}), getattr(config_type, "negated_options", {})
    out = {}
    for key, value in mapping.items():
        if key in renamed:
            _deprecated(key, renamed[key], where)
            key = renamed[key]
        elif key in negated:
            _deprecated(key, f"{negated[key]} (the opposite)", where)
            key, value = negated[key], not (value if isinstance(value, bool) else str(value).lower() in _TRUE)
        out[key] = value
    return out


def _rename_flags(config_type: type, argv: list[str]) -> list[str]:
    """Deprecated flags under their current names: `--model X` -> `--model_name_or_path X`; a negated one,
    `--overwrite [BOOL]` -> `--resume <not BOOL>`. Every other argument unchanged."""
    renamed, negated = getattr(config_type, "renamed_options", {}), getattr(config_type, "negated_options", {})
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        name, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in renamed:
            _deprecated(f"--{name}", f"--{renamed[name]}", "")
            out.append(f"--{renamed[name]}{sep}{value}")
            continue
        if name not in negated:
            out.append(arg)
            continue
        if not sep:
            value = args.pop(0) if args and args[0].lower() in (*_TRUE, "false", "no", "0", "off") else "true"
        _deprecated(f"--{name}", f"--{negated[name]} (the opposite)", "")
        out += [f"--{negated[name]}", "false" if value.lower() in _TRUE else "true"]
    return out


def parse_config(config_type: type, argv: list[str], prog: str, description: str = ""):
    """Parse `argv` (with an optional `--config FILE.yaml`) into one `config_type` instance."""
    parser = _RaisingParser(config_type, prog=prog, description=description,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", help="YAML recipe whose keys are any of the options below; flags given on the "
                                          "command line override it.")
    argv = list(argv)
    if "-h" in argv or "--help" in argv:
        parser.print_help()
        raise SystemExit(0)
    flags: list[str] = []
    path, argv = _split_config(argv)
    argv = _rename_flags(config_type, argv)
    if path is not None:
        mapping = resolve_aliases(config_type, read_yaml_mapping(path, "config file", "option names to values"),
                                  f"{path}: ")
        valid = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
        flags = _yaml_to_flags(mapping, valid, str(path))
        _parse(parser, flags, source=f"{path}: ")
    return _parse(parser, flags + argv)


def read_yaml_mapping(path: Path, what: str, keys: str, loader: type = yaml.SafeLoader) -> dict:
    """The mapping a YAML file holds; a missing file, non-UTF-8 text, bad YAML or a non-mapping raise `ConfigError`
    naming the file (`what` names the file's role, `keys` what its mapping holds)."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        mapping = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: expected a mapping of {keys}")
    return mapping


def _split_config(argv: list[str]) -> tuple[Path | None, list[str]]:
    """(`--config FILE` or `--config=FILE`, the other arguments)."""
    path, rest = None, []
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            value = next(args, None)
            if value is None:
                raise ConfigError("--config needs a YAML file path")
            path = Path(value)
        elif arg.startswith("--config="):
            path = Path(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return path, rest


def _parse(parser: HfArgumentParser, args: list[str], source: str = ""):
    """The first dataclass parsed from `args` (the namespace holding `--config` comes second)."""
    try:
        config, namespace = parser.parse_args_into_dataclasses(args=args, look_for_args_file=False)[:2]
    except (ConfigError, ValueError, TypeError) as err:
        raise ConfigError(f"{source}{err}") from err
    if getattr(namespace, "config", None) is not None:  # an abbreviation such as --conf: argparse took it silently
        raise ConfigError("write the recipe option in full: --config FILE")
    return config


def replace_config(config, **changes):
    """A copy of a config dataclass with some fields changed (re-validated by its __post_init__)."""
    return dataclasses.replace(config, **changes)
