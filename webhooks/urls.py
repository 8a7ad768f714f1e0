from django.urls import path

from webhooks import api

urlpatterns = [
    path("webhooks/", api.WebhookEndpointListCreate.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>/", api.WebhookEndpointDetail.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/rotate-secret/", api.WebhookSecretRotate.as_view(), name="api-webhook-rotate"),
    path("webhooks/<int:pk>/ping/", api.WebhookPing.as_view(), name="api-webhook-ping"),
    path("webhooks/<int:pk>/deliveries/", api.WebhookDeliveryList.as_view(), name="api-webhook-deliveries"),
]
