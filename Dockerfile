# upload-gateway: one stateless instance (state and locks in Redis when
# several run; see docker-compose.yml and deploy/README.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY backends ./backends
RUN pip install -c constraints.txt '.[s3,redis]'

RUN useradd --system --uid 10001 --home-dir /var/lib/upload-gateway --create-home gateway
USER gateway
WORKDIR /var/lib/upload-gateway

EXPOSE 1080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:1080/healthz', timeout=2)"]

ENTRYPOINT ["upload-gateway"]
CMD ["serve", "-c", "/etc/upload-gateway/config.yaml"]
