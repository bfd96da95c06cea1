# One image for every AegisMatrix service; docker-compose picks the command.
# BASE_IMAGE: a Debian-like image with python3 (3.11) and python3-venv; scripts/build-images.sh
# builds one from Debian's packages. Python packages come from build/wheels (filled by that
# script on the host) with no index, so the build itself needs no network.
ARG BASE_IMAGE=localhost/aegismatrix-base:bookworm
FROM ${BASE_IMAGE}
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
COPY requirements.txt .
RUN --mount=type=bind,source=build/wheels,target=/wheels \
    python3 -m venv /opt/venv \
 && pip install --quiet --no-index --find-links /wheels torch==2.13.0 -r requirements.txt
# The package itself, installed from its wheel (built on the host by the same script): the
# code lives in the venv's site-packages, its data and var/ in /app (AEGIS_HOME).
# (COPY, not a bind mount: a layer is rebuilt when the file it copies changes)
COPY build/wheels/aegismatrix-*.whl /tmp/project/
RUN pip install --quiet --no-index --no-deps /tmp/project/*.whl && rm -rf /tmp/project
ENV AEGIS_HOME=/app
COPY data ./data
# The models volume is mounted on /app/var/models: it must exist, owned by the service user,
# so a fresh named volume is created writable for the trainer.
RUN useradd --create-home aegis && mkdir -p /app/var/models /app/var/history && chown -R aegis /app/var
USER aegis
CMD ["aegis-stack"]
