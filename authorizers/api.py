"""GET /api/v1/authorizer/: the merchant's own account, and whether deletions are possible and why."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authorizers.api_keys import request_merchant
from authorizers.models import Authorizer
from authorizers.policy import eligibility


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class AuthorizerSerializer(serializers.ModelSerializer):
    certified = serializers.BooleanField(source="is_certified")
    granted_permission_sets = serializers.ListField(source="func_ids", child=serializers.IntegerField())
    # The platform this authorization (and so this API key) is of: an account that authorized two
    # platforms has a key for each.
    component_appid = serializers.CharField(source="platform.component_appid", read_only=True)
    eligible = serializers.SerializerMethodField()
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = Authorizer
        fields = [
            "appid",
            "component_appid",
            "nickname",
            "alias",
            "kind",
            "certified",
            "verify_type_id",
            "account_status",
            "granted_permission_sets",
            "status",
            "authorized_at",
            "revoked_at",
            "eligible",
            "reasons",
        ]

    def get_eligible(self, obj: Authorizer) -> bool:
        return eligibility(obj).eligible

    @extend_schema(responses=ReasonSerializer(many=True))
    def get_reasons(self, obj: Authorizer) -> list[dict[str, str]]:
        return [{"code": r.code, "message": r.message} for r in eligibility(obj).reasons]


class OwnAuthorizerView(APIView):
    @extend_schema(
        responses=AuthorizerSerializer, summary="Your account: type, certification, permissions, eligibility"
    )
    def get(self, request: Request) -> Response:
        return Response(AuthorizerSerializer(request_merchant(request).authorizer).data)


class PingView(APIView):
    """Checks an API key and does nothing else: what a client's health check (and the bench) calls."""

    @extend_schema(
        responses=inline_serializer("Ping", {"ok": serializers.BooleanField(), "appid": serializers.CharField()}),
        summary="Check your API key",
    )
    def get(self, request: Request) -> Response:
        return Response({"ok": True, "appid": request_merchant(request).authorizer.appid})


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Describes `Authorization: Api-Key <key>` in the OpenAPI document."""

    target_class = "authorizers.api_keys.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; issue one with `manage.py issue_api_key APPID`",
        }
