FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY workers ./workers
COPY templates ./templates
COPY config ./config
COPY demo ./demo
RUN pip install --no-cache-dir ".[postgres]"
ENV TULPAR_TEMPLATES_DIR=/app/templates TULPAR_VAR_DIR=/var/lib/tulpar
RUN useradd --system tulpar && mkdir -p /var/lib/tulpar && chown tulpar /var/lib/tulpar
USER tulpar
CMD ["celery", "-A", "workers.app", "worker", "--loglevel", "INFO"]
