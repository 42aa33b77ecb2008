# The serving image: the API (`leafdoc serve`), the web page, predictions on ONNX Runtime.
# No TensorFlow: the base install + the [serve] and [heic] extras, pinned by deploy/requirements-serve.lock
# (compiled from pyproject.toml under the constraints of the repository's requirements.lock).
# Build from the repository root:  bash deploy/build-images.sh serve  (docs/deploy.md, "Building the images"), or
#   docker build -f deploy/serve.Dockerfile -t leafdoc-serve .
# PYTHON_IMAGE: any Debian 12 image with Python 3.11 and venv; deploy/base-images.sh makes one without a registry.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/leafdoc
COPY deploy/requirements-serve.lock /tmp/requirements.lock
RUN /opt/leafdoc/bin/pip install --no-compile -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY src /src/src
# Not shipped: pip and setuptools (nothing installs at run time) and the test suites of pandas, NumPy and matplotlib
# (about 100 MB with their bytecode). Bytecode for the rest: the root filesystem is read-only in Kubernetes.
RUN /opt/leafdoc/bin/pip install --no-deps /src \
 && /opt/leafdoc/bin/pip uninstall -q -y pip setuptools \
 && site=$(echo /opt/leafdoc/lib/python3*/site-packages) \
 && find "$site/pandas" "$site/numpy" "$site/matplotlib" -depth -type d -name tests -exec rm -rf {} + \
 && /opt/leafdoc/bin/python -m compileall -q /opt/leafdoc/lib

FROM ${PYTHON_IMAGE}
# libgomp: OpenMP runtime for ONNX Runtime and OpenCV.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/leafdoc --create-home leafdoc
COPY --from=build /opt/leafdoc /opt/leafdoc
# The starter model seeds the registry on first start (LEAFDOC_MODEL_DIR); later versions live in the store.
COPY models/starter /opt/leafdoc-models/starter
# FORWARDED_ALLOW_IPS: whose X-Forwarded-For uvicorn believes (the client address the wrong-token and feedback limits
# count): loopback and the private ranges compose's network and a cluster's pods live in, where the proxy in front
# is (deploy/nginx/nginx.conf, the ingress), never `*` (with `*` uvicorn takes the header's first entry, which the
# client wrote: 1,000 wrong tokens, no 429). So the container's port must be reachable only through that proxy,
# which must set the header to the address it saw (nginx.conf: X-Forwarded-For $remote_addr; docs/security.md).
ENV PATH=/opt/leafdoc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LEAFDOC_HOME=/var/lib/leafdoc \
    LEAFDOC_MODEL_DIR=/opt/leafdoc-models/starter \
    LEAFDOC_RUN_CONSUMER=false \
    MPLCONFIGDIR=/tmp/matplotlib \
    FORWARDED_ALLOW_IPS=127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7
USER leafdoc
WORKDIR /var/lib/leafdoc
EXPOSE 8000
# Liveness. Orchestrators should route traffic on /readyz (the catalog and a model; a queue that cannot be
# reached makes it `degraded`, still 200: predictions go on).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Workers: one per CPU the container may use (its CPU limit), at most 4, or LEAFDOC_API_WORKERS; with several and the
# web page on, the page runs in a process of its own. Scale with replicas; one /metrics sums them.
CMD ["leafdoc", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-consumer"]
