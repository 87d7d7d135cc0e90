# The four mesh services in one image; BENTOMESH_SERVICE (or the first argument) picks one.
#   docker build -f docker/mesh.Dockerfile -t bentomesh/mesh .
# BASE_IMAGE: any Debian-based image with python3 (3.11/3.12) and python3-venv; the compose
# override passes the locally built bentomesh/python:3.11 so no registry is needed.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/mesh PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==0.9.*"
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock README.md ./
COPY contracts/pyproject.toml contracts/README.md ./contracts/
RUN /opt/uv/bin/uv sync --frozen --no-dev --extra mlflow --no-install-workspace --python "$(command -v python3)"
COPY contracts ./contracts
COPY services ./services
RUN /opt/uv/bin/uv sync --frozen --no-dev --extra mlflow --no-editable --python "$(command -v python3)"

FROM ${BASE_IMAGE}
RUN (dpkg -s libgomp1 >/dev/null 2>&1 \
      || (apt-get update && apt-get install -y --no-install-recommends libgomp1 \
          && rm -rf /var/lib/apt/lists/*)) \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin mesh \
 && mkdir -p /var/lib/bentomesh/bentoml /var/lib/bentomesh/prometheus /var/lib/bentomesh/state /artifacts /mlflow-artifacts \
    /var/lib/bentomesh/control /var/lib/bentomesh/keys/trusted \
    $(for p in training cli bridge packager builder deployer monitor; do echo /var/lib/bentomesh/keys/$p; done) \
 && chown -R mesh /var/lib/bentomesh /mlflow-artifacts
COPY --from=deps /opt/mesh /opt/mesh
ENV PATH=/opt/mesh/bin:$PATH \
    BENTOMESH_HOME=/var/lib/bentomesh \
    BENTOML_HOME=/var/lib/bentomesh/bentoml \
    BENTOMESH_HTTP_HOST=0.0.0.0 \
    BENTOML_DO_NOT_TRACK=True \
    OMP_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /var/lib/bentomesh
EXPOSE 8101 8102 8103 8104
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-m", "services", "--healthcheck"]
ENTRYPOINT ["python", "-m", "services"]
