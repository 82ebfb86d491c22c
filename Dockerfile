# The gateway as a container: `gateway run` with settings, policies and secrets mounted in.
FROM python:3.11-slim

RUN useradd --system --home /var/lib/gateway --create-home gateway
WORKDIR /opt/gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER gateway
VOLUME ["/var/lib/gateway"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/.gateway/healthz', timeout=2)" || exit 1
ENTRYPOINT ["gateway"]
CMD ["run", "--config", "/etc/gateway/gateway.yaml"]
