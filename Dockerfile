FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KFPLATFORM_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml ./
COPY platform_app ./platform_app
COPY wechat ./wechat
COPY authorizers ./authorizers
COPY kfaccounts ./kfaccounts
COPY audit ./audit
COPY webhooks ./webhooks
COPY cleanup ./cleanup
COPY console ./console
COPY observability ./observability
COPY manage.py ./
RUN pip install --no-cache-dir . \
 && DJANGO_DEBUG=true python manage.py collectstatic --noinput \
 && useradd --system --home /app kfplatform && mkdir -p /app/var/prometheus && chown -R kfplatform /app/var
USER kfplatform
EXPOSE 8000
CMD ["gunicorn", "-c", "python:platform_app.gunicorn_conf", "platform_app.wsgi:application", "--bind", "0.0.0.0:8000"]
