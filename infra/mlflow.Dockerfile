# MLflow server image for infra/docker-compose.yml: the official image plus the Postgres driver
# and the S3 client it needs for --backend-store-uri postgresql://... and s3:// artifacts.
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir "psycopg2-binary>=2.9,<3" "boto3>=1.34,<2"
