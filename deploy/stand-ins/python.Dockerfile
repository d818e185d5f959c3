# Stand-in for python:3.11-slim, for the compose test on machines that cannot reach Docker Hub:
# Debian bookworm's Python 3.11 (the base is a Debian root filesystem made by mmdebstrap).
ARG BASE
FROM ${BASE}
RUN ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
