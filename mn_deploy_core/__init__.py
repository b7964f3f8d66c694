"""The rollout core: every rule of docs/rules.md, pure Python, no I/O and no clock of its own."""
