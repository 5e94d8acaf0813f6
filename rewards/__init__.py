"""prift.rewards: verifiers shared by RL rewards and evaluation (math, multiple choice, code sandbox).

Imports nothing else of prift.
"""
