"""MLflow tracking and registry of Rayline training runs (see ``tracker``)."""
