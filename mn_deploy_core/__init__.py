"""The rollout core: every rule of SEMANTICS.md, pure Python, no I/O and no clock of its own."""
