FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the distribution is built from: no .venv, .git or tests in the image.
COPY pyproject.toml ./
COPY schema/ schema/
COPY broker/ broker/
COPY dispatcher/ dispatcher/
COPY portal/ portal/
COPY simulator/ simulator/
COPY resayil/ resayil/
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app resayil

USER resayil
EXPOSE 8000
CMD ["resayil", "api", "--host", "0.0.0.0", "--port", "8000"]
