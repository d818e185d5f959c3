# Stand-in for prom/prometheus: Debian bookworm's Prometheus 2 (an official release cannot be
# fetched on machines that reach no registry but Debian's and PyPI). Same entrypoint, user and
# data folder as the official image.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus \
    && rm -rf /var/lib/prometheus/metrics2 && ln -s /prometheus /var/lib/prometheus/metrics2
# Debian's default data folder is /var/lib/prometheus/metrics2: it is the official image's
# /prometheus (the volume) here.
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
