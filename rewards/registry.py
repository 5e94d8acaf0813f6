"""A small registry of RL reward functions, looked up by name (from YAML) or by dotted path (user functions).

Every reward follows TRL's reward-function signature ``f(prompts, completions, **kwargs) -> list[float | None]``
(dataset columns such as ``answer`` or ``tests`` arrive as keyword arguments; ``None`` means "not applicable to
this row"). Settings of a reward are keyword parameters with defaults; ``get_reward(name, **settings)`` binds
them and checks their names.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

RewardFn = Callable[..., list[float | None]]

_REWARDS: dict[str, RewardFn] = {}
_ACCURACY: set[str] = set()
_BUILTINS = "prift.rewards.functions"


def register_reward(name: str, accuracy: bool = False) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register a reward under ``name``; a second registration of the same name is an error.
    ``accuracy``: it verifies the task's answer (DAPO's dynamic sampling filters groups on these)."""

    def decorate(fn: RewardFn) -> RewardFn:
        if name in _REWARDS:
            raise ValueError(f"reward {name!r} is already registered (by {_REWARDS[name].__module__})")
        _REWARDS[name] = fn
        if accuracy:
            _ACCURACY.add(name)
        return fn

    return decorate


def is_accuracy_reward(name: str) -> bool:
    """Whether ``name`` is a registered accuracy reward (a verifier of the task's answer, not a shaping term)."""
    importlib.import_module(_BUILTINS)
    return name in _ACCURACY


def reward_names() -> list[str]:
    importlib.import_module(_BUILTINS)
    return sorted(_REWARDS)


class BoundReward:
    """A reward with some settings fixed; picklable (TRL may send reward functions to a spawned process)."""

    def __init__(self, fn: RewardFn, settings: dict[str, object]) -> None:
        self.fn, self.settings = fn, settings
        self.__name__ = fn.__name__

    def __call__(self, prompts: list, completions: list, **kwargs: object) -> list[float | None]:
        return self.fn(prompts, completions, **{**kwargs, **self.settings})


class AsyncBoundReward(BoundReward):
    """A bound ``async def`` reward: still a coroutine function to TRL, which awaits it beside the others."""

    async def __call__(self, prompts: list, completions: list, **kwargs: object) -> list[float | None]:
        return await self.fn(prompts, completions, **{**kwargs, **self.settings})


def _from_path(path: str) -> RewardFn:
    module_name, _, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import reward {path!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"reward {path!r} is not callable")
    return fn


def get_reward(name: str, **settings: object) -> RewardFn:
    """The registered reward ``name``, else ``package.module:function`` / ``package.module.function``.

    Unknown names raise ``ValueError`` listing the registered names; unknown settings list the accepted ones.
    """
    names = reward_names()
    if name in _REWARDS:
        fn = _REWARDS[name]
    elif "." in name or ":" in name:
        fn = _from_path(name)
    else:
        raise ValueError(f"unknown reward {name!r}; registered: {', '.join(names)} (or a dotted path 'pkg.mod:fn')")
    if not settings:
        return fn
    params = inspect.signature(fn).parameters
    accepted = [p for p, spec in params.items() if spec.default is not inspect.Parameter.empty]
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ValueError(f"reward {name!r} has no setting(s) {unknown}; accepted: {accepted}")
    return (AsyncBoundReward if inspect.iscoroutinefunction(fn) else BoundReward)(fn, settings)
