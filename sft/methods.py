"""Method presets: a method is a priority rule, a signal source and the rule's parameters.

| preset     | rule    | source    | m_t                                              |
|------------|---------|-----------|--------------------------------------------------|
| nll        | nll     | online    | 1                                                |
| dft        | prob    | online    | p(y_t)                                           |
| prift_prob | prob    | reference | p_ref(y_t)                                       |
| prift_mass | mass    | reference | 1[u_ref(y_t) >= 0.5]                             |
| profit     | profit  | online    | 1[p(y_t) >= 0.1]                                 |
| talr       | talr    | online    | p(y_t)^(1/tau), tau adaptive                     |
| eaft       | eaft    | online    | (H_top20 / ln 20)^1                              |
| power      | power   | online    | p(y_t)^0.5                                       |
| rho1       | rho1    | online    | top 60% of tokens by CE_online - CE_ref          |
| signed     | signed  | online    | +1 / -1 from the data's per-row `sign`           |

Any preset's rule, source and parameters can be overridden, so any rule runs on any source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prift.sft.priorities import get_rule
from prift.sft.sources import SOURCES


@dataclass(frozen=True)
class Method:
    rule: str
    source: str = "online"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        get_rule(self.rule)
        if self.source not in SOURCES:
            raise ValueError(f"unknown signal source {self.source!r}; valid: {', '.join(SOURCES)}")


METHODS: dict[str, Method] = {
    "nll": Method("nll"),
    "dft": Method("prob"),
    "prift_prob": Method("prob", "reference"),
    "prift_mass": Method("mass", "reference", {"threshold": 0.5}),
    "profit": Method("profit", "online", {"threshold": 0.1, "direction": "higher"}),
    "talr": Method("talr"),
    "eaft": Method("eaft", "online", {"alpha": 1.0}),
    "power": Method("power", "online", {"alpha": 0.5}),
    "rho1": Method("rho1", "online", {"ratio": 0.6}),
    "signed": Method("signed", "online", {"negative_weight": 1.0}),
}


def resolve_method(name: str, rule: str | None = None, source: str | None = None,
                   params: dict | None = None) -> Method:
    """The preset `name` with its rule, source and parameters overridden where given."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    preset = METHODS[name]
    chosen_rule = rule or preset.rule
    base_params = preset.params if chosen_rule == preset.rule else {}
    return Method(chosen_rule, source or preset.source, {**base_params, **(params or {})})
