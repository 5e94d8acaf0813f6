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
| asft       | prob    | online    | p(y_t), + 0.1 KL_k(p_ref || p_theta) (ASFT)      |
| gift       | nll     | online    | 1, on GIFT's soft target softmax(log p_ref + 20*1[y]) |
| eksft      | eksft   | online    | 0 on the top 20% by entropy and by KL to p_ref   |
| pear       | pear    | online    | exp(clip(suffix log-ratio online / reference))   |
| pear_sequence | pear | online    | exp(clip(sequence log-ratio))                    |

The last five read the reference's top-k distribution or its data log-probs (`top_k` / the reference cache): loss
`terms` (`prift.sft.objectives`) ride beside any rule and source. Any preset's rule, source, parameters and terms can
be overridden, so any rule runs on any source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prift.sft.objectives import check_terms
from prift.sft.priorities import get_rule
from prift.sft.sources import SOURCES


@dataclass(frozen=True)
class Method:
    rule: str
    source: str = "online"
    params: dict = field(default_factory=dict)
    terms: dict = field(default_factory=dict)  # loss term name -> its parameters

    def __post_init__(self):
        get_rule(self.rule)
        if self.source not in SOURCES:
            raise ValueError(f"unknown signal source {self.source!r}; valid: {', '.join(SOURCES)}")
        check_terms(self.terms)

    @property
    def needs_topk(self) -> bool:
        """Whether it reads the reference's top-k distribution (a loss term, or a rule such as eksft)."""
        return bool(self.terms) or get_rule(self.rule).topk


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
    "asft": Method("prob", "online", {}, {"kl_anchor": {"coef": 0.1, "direction": "forward"}}),
    "gift": Method("nll", "online", {}, {"gift": {"beta": 20.0}}),
    "eksft": Method("eksft", "online", {"entropy_ratio": 0.2, "kl_ratio": 0.2}),
    "pear": Method("pear", "online", {"level": "token", "gamma": 1.0, "clip": 5.0}),
    "pear_sequence": Method("pear", "online", {"level": "sequence", "clip": 5.0}),
}


def resolve_method(name: str, rule: str | None = None, source: str | None = None,
                   params: dict | None = None, terms: dict | None = None) -> Method:
    """The preset `name` with its rule, source and parameters overridden where given; `terms` merged over the
    preset's term by term (a term mapped to None is removed)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    preset = METHODS[name]
    chosen_rule = rule or preset.rule
    base_params = preset.params if chosen_rule == preset.rule else {}
    merged = {**preset.terms}
    for term, values in (terms or {}).items():
        if values is None:
            merged.pop(term, None)
        else:
            merged[term] = {**merged.get(term, {}), **values}
    return Method(chosen_rule, source or preset.source, {**base_params, **(params or {})}, merged)
