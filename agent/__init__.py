"""The per-host agent: host set-up and registration, container plumbing, the CNI plugin."""

__version__ = "0.1.0"
