"""The MLOps loop as offline jobs: ingestion, validation, monitoring, retraining and promotion.

Each job is a function the ``pvcast`` CLI (``training/cli/mlops.py``) calls and a Kubernetes CronJob runs; see
docs/operations.md for the loop, its schedules and every threshold.
"""
