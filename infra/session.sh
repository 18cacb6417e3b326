# Sourced by demo.sh and real-data.sh: set the environment up if needed, activate it, and give
# the run one Prefect server (started when none answers at 127.0.0.1:4200), so every stage
# shows live in its UI and none pays for a temporary server of its own.
bash infra/setup.sh
. .venv/bin/activate
if PREFECT_API_URL=$(python -m flows.server); then
    export PREFECT_API_URL
    echo "Prefect UI: ${PREFECT_API_URL%/api} (the server stays up; stop it with: python -m flows.server --stop)"
fi
