"""The merchant REST API for webhooks: register a receiver, rotate its secret, read the delivery log.

The signing secret appears in exactly two answers: the registration and a rotation. Another
merchant's endpoint is simply not found.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authorizers.api_keys import request_merchant
from platform_app.pagination import NewestFirst
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.CharField(), help_text="empty: every event type")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "is_active", "created_at", "secret_rotated_at"]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="the signing secret; shown only in this answer")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookEndpointInput(serializers.Serializer):
    url = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(max_length=200, allow_blank=True, required=False)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=48),
        required=False,
        max_length=10,
        help_text=f"any of {', '.join(services.SUBSCRIBABLE)}; empty or absent: all",
    )
    is_active = serializers.BooleanField(required=False)


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="the new signing secret; shown only in this answer")
    previous_secret_valid_until = serializers.DateTimeField(
        help_text="until then every event also carries a signature made with the previous secret"
    )


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "status_code", "error", "duration_ms"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "gave_up_at",
            "payload",
            "attempt_log",
        ]


def _endpoints(request: Request) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(authorizer=request_merchant(request).authorizer, disabled_at__isnull=True)


def _endpoint(request: Request, pk: int) -> WebhookEndpoint:
    endpoint = _endpoints(request).select_related("authorizer").filter(pk=pk).first()
    if endpoint is None:
        raise NotFound("no such webhook endpoint")
    return endpoint


class WebhookEndpointListCreate(generics.ListAPIView):
    serializer_class = WebhookEndpointSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return _endpoints(self.request)

    @extend_schema(summary="Your webhook endpoints")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=WebhookEndpointInput,
        responses={201: WebhookEndpointCreatedSerializer},
        summary="Register a webhook receiver (https, public address); the secret is shown once",
    )
    def post(self, request: Request) -> Response:
        merchant = request_merchant(request)
        body = WebhookEndpointInput(data=request.data)
        body.is_valid(raise_exception=True)
        if "url" not in body.validated_data:
            raise serializers.ValidationError({"url": ["this field is required"]})
        endpoint, secret = services.webhook_endpoint_register(
            authorizer=merchant.authorizer,
            url=body.validated_data["url"],
            actor=merchant.actor,
            event_types=body.validated_data.get("event_types"),
            description=body.validated_data.get("description", ""),
        )
        data = {**WebhookEndpointSerializer(endpoint).data, "secret": secret}
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetail(APIView):
    @extend_schema(responses=WebhookEndpointSerializer, summary="One of your webhook endpoints")
    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookEndpointSerializer(_endpoint(request, pk)).data)

    @extend_schema(request=WebhookEndpointInput, responses=WebhookEndpointSerializer, summary="Change an endpoint")
    def patch(self, request: Request, pk: int) -> Response:
        endpoint = _endpoint(request, pk)
        body = WebhookEndpointInput(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            endpoint=endpoint, actor=request_merchant(request).actor, **body.validated_data
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses={204: None}, summary="Stop sending to an endpoint (its log stays)")
    def delete(self, request: Request, pk: int) -> Response:
        services.webhook_endpoint_disable(endpoint=_endpoint(request, pk), actor=request_merchant(request).actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretRotate(APIView):
    @extend_schema(request=None, responses=SecretSerializer, summary="Rotate the signing secret (shown once)")
    def post(self, request: Request, pk: int) -> Response:
        endpoint = _endpoint(request, pk)
        secret = services.webhook_endpoint_secret_rotate(endpoint=endpoint, actor=request_merchant(request).actor)
        return Response({"secret": secret, "previous_secret_valid_until": endpoint.previous_secret_expires_at})


class WebhookPing(APIView):
    @extend_schema(request=None, responses={202: WebhookDeliverySerializer}, summary="Send a test event (ping)")
    def post(self, request: Request, pk: int) -> Response:
        endpoint = _endpoint(request, pk)
        delivery = services.webhook_ping(endpoint=endpoint, actor=request_merchant(request).actor)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryList(generics.ListAPIView):
    serializer_class = WebhookDeliverySerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        endpoint = _endpoint(self.request, self.kwargs["pk"])
        return WebhookDelivery.objects.filter(endpoint=endpoint).prefetch_related("attempt_log")

    @extend_schema(summary="The delivery log of one endpoint, newest first, with every attempt")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
