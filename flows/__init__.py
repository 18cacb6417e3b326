"""Thin Prefect flows, one per pipeline stage (``python -m flows.<stage>``)."""

import os

# Each stage run without PREFECT_API_URL starts a temporary Prefect server, whose telemetry
# service logs an ERROR on machines without internet. The pipeline phones nowhere by default;
# set PREFECT_SERVER_ANALYTICS_ENABLED=true to opt in.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
