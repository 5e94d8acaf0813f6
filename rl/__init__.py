"""prift.rl: GRPO/DAPO stage on TRL (dynamic sampling, overlong shaping, budgets, rollouts)."""
