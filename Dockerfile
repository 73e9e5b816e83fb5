# The web, worker and beat image (docker-compose.yml). pyscard builds from source: gcc + libpcsclite-dev.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 CARDAP_VAR_DIR=/var/lib/cardap
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libpcsclite-dev swig gettext curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install . && python manage.py compilemessages -v 0 \
 && SECRET_KEY=build-only-build-only-build-only-build-only-build-only KEYSTORE_KEY=build-only \
    ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput -v 0
RUN useradd --system --home /var/lib/cardap cardap && mkdir -p /var/lib/cardap && chown cardap /var/lib/cardap
USER cardap
EXPOSE 8000
CMD ["gunicorn", "config.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000", "--workers", "3", "--graceful-timeout", "30", "--access-logfile", "-"]
