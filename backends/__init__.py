"""Stores, registries and the live world that implement the core's ports."""
