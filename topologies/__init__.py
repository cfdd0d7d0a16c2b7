"""The multi-host test bed on one machine (``python -m topologies``); see ``topologies.bed``."""
