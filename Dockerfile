# FGFF Explorer: the Streamlit app on port 8501.
#
#   docker build -t fgff-explorer .
#   docker run --rm -p 8501:8501 -v fgff-runs:/runs -v "$PWD/data:/data" fgff-explorer
#   open http://localhost:8501
#
# CPU by default: torch comes from the CPU wheel index (a small image, no CUDA libraries).
# CUDA variant: take torch from a CUDA wheel index (the wheels bundle the CUDA runtime; the host needs the
# NVIDIA driver and nvidia-container-toolkit), optionally on a CUDA base image that has Python 3.10+:
#   docker build -t fgff-explorer:cuda \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#     [--build-arg BASE_IMAGE=<a CUDA image with python3.10+ and pip on PATH>] .
#   docker run --rm --gpus all -p 8501:8501 -v fgff-runs:/runs fgff-explorer:cuda
# The app's Train page then shows "Device: CUDA".
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FGFF_DATA_DIR=/data \
    FGFF_RUNS_DIR=/runs \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app

# Dependencies first, so code edits do not reinstall them.
COPY requirements.txt .
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -r requirements.txt

COPY . .

RUN useradd --create-home --uid 1000 fgff \
    && mkdir -p /data /runs \
    && chown -R fgff:fgff /data /runs
USER 1000:1000

VOLUME ["/data", "/runs"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4).status == 200 else 1)"]

CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
