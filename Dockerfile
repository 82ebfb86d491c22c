# The gateway as a container: `gateway run` with settings, policies and secrets mounted in.
FROM python:3.11-slim

# A fixed numeric uid and gid (10001): Kubernetes' runAsNonRoot can only check a numeric USER,
# and mounted secrets and volumes can be given to that group (fsGroup).
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home /var/lib/gateway --create-home gateway
WORKDIR /opt/gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER 10001:10001
VOLUME ["/var/lib/gateway"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/.gateway/healthz', timeout=2)" || exit 1
ENTRYPOINT ["gateway"]
CMD ["run", "--config", "/etc/gateway/gateway.yaml"]
