"""Thin Ray job entrypoints: ``python -m rayline.jobs.<name>`` on a cluster's head node."""
