# The node image: nothing but the static binary (built by `make image`), run as
# an unprivileged user. It binds to 0.0.0.0, so a node starts only with client
# tokens (AUTH_TOKEN or AUTH_FILE) and a cluster key (CLUSTER_KEY), or with
# INSECURE=true on a network you trust; docker-compose.yml reads both from .env.
FROM scratch
COPY bin/disperse /disperse
# The data directory, owned by the node's user; a new named volume mounted on
# /data takes this ownership.
COPY --chown=10001:10001 bin/image-data /data
USER 10001:10001
ENV BIND_ADDR=0.0.0.0 DATA_DIR=/data
VOLUME /data
EXPOSE 7946/tcp 7946/udp 8000/tcp
# Ready once recovered and, when joining, synced with a peer. With TLS on the
# API, override it with --addr https://127.0.0.1:8000 and --cacert.
HEALTHCHECK --interval=10s --timeout=5s --start-period=2m --retries=3 \
	CMD ["/disperse", "ready", "--timeout", "3s"]
ENTRYPOINT ["/disperse", "serve"]
