# The training worker image: `leafdoc worker` takes training jobs from the queue (Redis at scale) and
# runs each in its own process with TensorFlow. The [train], [serve] and [heic] extras (the worker needs the
# queue, catalog and store clients of [serve]), pinned by deploy/requirements-worker.lock.
# Build from the repository root:  bash deploy/build-images.sh worker  (docs/deploy.md, "Building the images"), or
#   docker build -f deploy/worker.Dockerfile -t leafdoc-worker .
# GPUs: run on a node with the NVIDIA container toolkit; with more than one GPU visible, training uses
# tf.distribute.MirroredStrategy (training option `distribute`: auto | mirrored | none).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/leafdoc
COPY deploy/requirements-worker.lock /tmp/requirements.lock
RUN /opt/leafdoc/bin/pip install --no-compile -r /tmp/requirements.lock
# GPU workers: --build-arg WITH_CUDA=true adds NVIDIA's CUDA and cuDNN wheels for the locked TensorFlow.
ARG WITH_CUDA=false
RUN if [ "$WITH_CUDA" = true ]; then \
      /opt/leafdoc/bin/pip install --no-compile "tensorflow[and-cuda]==$(sed -n 's/^tensorflow==//p' /tmp/requirements.lock)"; \
    fi
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/leafdoc/bin/pip install --no-deps /src \
 && /opt/leafdoc/bin/python -m compileall -q /opt/leafdoc/lib

FROM ${PYTHON_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/leafdoc --create-home leafdoc
COPY --from=build /opt/leafdoc /opt/leafdoc
ENV PATH=/opt/leafdoc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LEAFDOC_HOME=/var/lib/leafdoc \
    MPLCONFIGDIR=/tmp/matplotlib \
    KERAS_HOME=/var/lib/leafdoc/keras \
    TF_CPP_MIN_LOG_LEVEL=2
USER leafdoc
WORKDIR /var/lib/leafdoc
# No HTTP port: a worker waits for a queue it cannot reach; one that cannot open the catalog at start exits and is
# restarted. A job whose
# worker dies is queued again by the next worker after LEAFDOC_JOB_LEASE_SECONDS (at most
# LEAFDOC_JOB_MAX_ATTEMPTS runs) and continues after the last epoch its checkpoint in the store holds.
CMD ["leafdoc", "worker"]
