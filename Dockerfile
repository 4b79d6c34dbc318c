# One image for every Studio process: gunicorn (the default command), the worker
# (`python manage.py qcluster`), migrations and the DashScope emulator. compose.yaml runs them.

# Build stage: a virtualenv holding Studio's pinned dependencies, and nothing else.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml ./
# Only the dependencies are installed: the app runs from its source tree (below), and this
# layer is rebuilt only when pyproject.toml changes, not on every code change.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --requirement requirements.txt

# Runtime stage: the virtualenv and the app, run by an unprivileged user with a fixed uid.
FROM python:3.11-slim-bookworm
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATIC_MANIFEST=true \
    STUDIO_MEDIA_ROOT=/app/media \
    WEB_CONCURRENCY=3
# The media directory belongs to the app's user: a named volume mounted there starts empty
# and takes this ownership, so the web and worker processes can write images into it.
RUN groupadd --system --gid 10001 studio \
    && useradd --system --uid 10001 --gid studio --no-create-home --home-dir /app studio \
    && mkdir -p /app/media \
    && chown studio:studio /app/media
COPY --from=build /venv /venv
WORKDIR /app
# settings.BASE_DIR is the directory above the studio package, where templates/ and static/
# live, so the app runs from this tree.
COPY manage.py ./
COPY studio ./studio
COPY templates ./templates
COPY static ./static
# The key only lets the settings load for this one command; it is not kept in the image.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK here: the worker and the emulator run from this image too and serve no
# /healthz, so compose.yaml checks each service in its own way.
# WEB_CONCURRENCY (above) sets gunicorn's worker processes; uploads of up to nine reference
# images are checked in the request, hence a timeout above gunicorn's default 30 s.
CMD ["gunicorn", "studio.wsgi", "--bind", "0.0.0.0:8000", "--timeout", "60", "--access-logfile", "-"]
