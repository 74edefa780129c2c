# The node image: nothing but the static binary (built by `make image`).
FROM scratch
COPY bin/disperse /disperse
ENV BIND_ADDR=0.0.0.0 DATA_DIR=/data
VOLUME /data
EXPOSE 7946/tcp 7946/udp 8000/tcp
ENTRYPOINT ["/disperse", "serve"]
