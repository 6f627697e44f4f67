"""Rayline: train and serve ML models on Ray clusters."""

__version__ = "0.1.0"
