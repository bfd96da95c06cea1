# One image for every AegisMatrix service; docker-compose picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -r requirements.txt
COPY shared ./shared
COPY services ./services
COPY data ./data
COPY docs ./docs
RUN useradd --create-home aegis && mkdir -p /app/var && chown -R aegis /app/var
USER aegis
CMD ["python", "-m", "services.stack"]
