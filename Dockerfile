# The msvae annotation service. CPU image by default:
#   docker build -t msvae .
# CUDA image: the CUDA wheels of torch bring their own CUDA libraries (the host needs the NVIDIA driver and
# container toolkit; run with --gpus all, MSVAE_DEVICE=auto then picks cuda:0):
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t msvae:cuda .
# BASE_IMAGE may name another Debian-based Python >= 3.11 image.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MSVAE_DATA_DIR=/data

# RDKit's drawing code links libXrender/libXext.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libxrender1 libxext6 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"
COPY pyproject.toml README.md ./
COPY app ./app
COPY models ./models
COPY training ./training
COPY migrations ./migrations
RUN pip install .

RUN useradd --create-home --uid 1000 msvae && mkdir -p /data && chown msvae /data
USER msvae
VOLUME ["/data"]
EXPOSE 8000

# The same commands as docker-compose.yml (tests/test_docker_config.py runs both).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)"]
CMD ["msvae", "serve", "--host", "0.0.0.0", "--port", "8000"]
