"""prift.sft: token-priority SFT (signals, priority rules, signal sources, reference cache, trainer)."""
