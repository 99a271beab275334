# The p2p-testnet node image: one node per container, run as a non-root user.
#
# Normal build (a registry and the package index are reachable):
#   docker build -t p2p-testnet .
# Offline build (base image from Debian packages, Python dependencies from build/wheelhouse/):
#   scripts/docker-offline-inputs.sh        # prepares both, once
#   docker build --build-arg BASE_IMAGE=p2p-testnet-base:bookworm -t p2p-testnet .
# When build/wheelhouse/ holds wheels, pip installs from it alone (--no-index); otherwise from the
# index. The base must provide Python 3.11+ with venv (python:3.x-slim or Debian's python3-venv).
#
# The node starts from environment variables (NODE_INDEX, NODES, CONSENSUS, SEED, ...; see
# testnet/backends/node_env.py and the README) or from a mounted config file: `--config /path/node.yaml`.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# The brackets make the wheelhouse optional: the COPY still has pyproject.toml to copy.
COPY pyproject.toml build/wheelhous[e] /wheelhouse/
COPY pyproject.toml README.md /src/
COPY consensus /src/consensus
COPY p2p /src/p2p
COPY node /src/node
COPY testnet /src/testnet
RUN python3 -m venv /opt/venv \
 && if ls /wheelhouse/*.whl >/dev/null 2>&1; then \
      echo "installing from the wheelhouse (offline)"; \
      /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links /wheelhouse /src; \
    else \
      /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check /src; \
    fi

FROM ${BASE_IMAGE}
# iptables: network-level partitions (`testnet partition --layer net`) run it inside the
# container as root through `docker exec`; the node itself never runs as root.
RUN if ! command -v iptables >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends iptables \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --system --gid 10001 node \
 && useradd --system --uid 10001 --gid node --home-dir /data --no-create-home node \
 && mkdir -p /data /genesis \
 && chown node:node /data /genesis
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    PORT=18444
USER node
WORKDIR /data
EXPOSE 18444
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD python3 -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/status' % os.environ.get('PORT', '18444'), timeout=2)"
ENTRYPOINT ["python3", "-m", "testnet.backends.node_env"]
