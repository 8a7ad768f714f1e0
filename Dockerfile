FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KFPLATFORM_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml ./
COPY platform_app ./platform_app
COPY wechat ./wechat
COPY dbkit ./dbkit
COPY errorkit ./errorkit
COPY authorizers ./authorizers
COPY kfaccounts ./kfaccounts
COPY audit ./audit
COPY webhooks ./webhooks
COPY cleanup ./cleanup
COPY console ./console
COPY observability ./observability
COPY manage.py ./
# collectstatic loads the settings, and production settings need secrets: it gets throwaway values made
# up in this step and gone with it (DJANGO_DEBUG=true would write generated keys into /app/var, which
# would then ship in the layer). No secret is baked into the image; the real ones come from .env.
RUN pip install --no-cache-dir . \
 && DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=build.invalid PUBLIC_BASE_URL=https://build.invalid DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" FIELD_ENCRYPTION_KEYS="build:$(python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')" WECHAT_COMPONENT_APPID=wx0000000000000000 WECHAT_COMPONENT_APPSECRET=build-only WECHAT_COMPONENT_TOKEN=build-only WECHAT_COMPONENT_AES_KEY="$(python -c 'print(43 * "B")')" python manage.py collectstatic --noinput \
 && rm -rf /app/var/broker /app/var/cache \
 && test ! -e /app/var/django_secret_key && test ! -e /app/var/field_encryption_keys \
 && useradd --system --home /app kfplatform && mkdir -p /app/var/prometheus && chown -R kfplatform /app/var
USER kfplatform
EXPOSE 8000
CMD ["gunicorn", "-c", "python:platform_app.gunicorn_conf", "platform_app.wsgi:application", "--bind", "0.0.0.0:8000"]
