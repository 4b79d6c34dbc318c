# Build stage: install Studio and its pinned dependencies into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /src
COPY pyproject.toml ./
COPY studio ./studio
RUN /venv/bin/pip install .

# Runtime stage: the virtualenv plus the project tree, run as an unprivileged user.
FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATIC_MANIFEST=true
RUN useradd --system --create-home --uid 10001 studio
COPY --from=build /venv /venv
WORKDIR /app
# settings.BASE_DIR is the directory above the studio package, where templates/ and static/
# live, so the app runs from this tree rather than from the installed copy.
COPY manage.py ./
COPY studio ./studio
COPY templates ./templates
COPY static ./static
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && mkdir media && chown studio:studio media
USER studio
EXPOSE 8000
CMD ["gunicorn", "studio.wsgi", "--bind", "0.0.0.0:8000"]
