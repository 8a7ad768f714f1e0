"""The merchant REST API for kf accounts and deletions. Views validate, call one service, serialize."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authorizers.api_keys import request_merchant
from authorizers.policy import NotEligible, eligibility
from errorkit import DomainError
from kfaccounts import services
from kfaccounts.models import KF_LIST_FIELDS, DeletionRequest, DeletionStatus, KfAccount
from kfaccounts.validation import MAX_BULK
from platform_app.pagination import NewestFirst


class ByAccount(NewestFirst):
    ordering = "kf_account"


class KfAccountSerializer(serializers.ModelSerializer):
    present = serializers.BooleanField(source="is_present")

    class Meta:
        model = KfAccount
        fields = [
            "kf_account",
            *KF_LIST_FIELDS,
            "present",
            "first_seen_at",
            "last_seen_at",
            "gone_at",
        ]


class DeletionSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(
        choices=DeletionStatus.choices,
        read_only=True,
        help_text=(
            "pending → running → succeeded | failed | rejected; pending again while a retry is scheduled "
            "or the merchant's daily quota is spent. cancelled: withdrawn by the service provider's staff "
            "while still pending (terminal; WeChat was not called again). A failed deletion that staff "
            "retry goes back to pending."
        ),
    )

    class Meta:
        model = DeletionRequest
        fields = ["id", "kf_account", "status", "reason", "errcode", "errmsg", "attempts", "created_at", "finished_at"]

    def to_representation(self, instance: DeletionRequest) -> dict[str, Any]:
        # The declared fields without DRF's field-by-field machinery: a bulk answer lists up to 1,000
        # deletions, and that machinery cost a third of the request. tests/kfaccounts/test_api_output.py
        # holds it equal to the generic output.
        return {
            "id": instance.pk,
            "kf_account": instance.kf_account,
            "status": str(instance.status),
            "reason": instance.reason,
            "errcode": instance.errcode,
            "errmsg": instance.errmsg,
            "attempts": instance.attempts,
            "created_at": _datetime(instance.created_at),
            "finished_at": _datetime(instance.finished_at),
        }


_DATETIME = serializers.DateTimeField()


def _datetime(value: datetime | None) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


class DeletionCreateSerializer(serializers.Serializer):
    kf_account = serializers.JSONField(required=False, help_text="one account: prefix@wechatid")
    kf_accounts = serializers.ListField(
        child=serializers.JSONField(), required=False, max_length=MAX_BULK, help_text=f"up to {MAX_BULK} accounts"
    )

    def validate(self, attrs: dict) -> dict:
        if ("kf_account" in attrs) == ("kf_accounts" in attrs):
            raise serializers.ValidationError("give exactly one of kf_account and kf_accounts")
        return attrs


def _request_deletions(
    request: Request, accounts: list[object], idempotency_key: str | None = None
) -> list[DeletionRequest]:
    # Refusals (a bad account, not eligible, a reused Idempotency-Key, too many pending) are the
    # service's DomainErrors: platform_app.api_errors answers them.
    merchant = request_merchant(request)
    return services.deletions_request(
        authorizer=merchant.authorizer,
        kf_accounts=accounts,
        actor=merchant.actor,
        idempotency_key=idempotency_key,
        max_pending=settings.DELETION_MAX_PENDING_PER_MERCHANT,
    )


class KfAccountList(generics.ListAPIView):
    serializer_class = KfAccountSerializer
    pagination_class = ByAccount

    @extend_schema(
        summary="Your kf accounts, as of the last sync",
        parameters=[OpenApiParameter("include_gone", bool, description="also list accounts gone upstream")],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[KfAccount]:
        queryset = KfAccount.objects.filter(authorizer=request_merchant(self.request).authorizer)
        if self.request.query_params.get("include_gone", "").lower() not in ("1", "true"):
            queryset = queryset.filter(gone_at__isnull=True)
        return queryset


class KfAccountSync(APIView):
    @extend_schema(
        request=None,
        summary="Re-read your kf accounts from WeChat",
        responses={202: inline_serializer("SyncQueued", {"status": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        merchant = request_merchant(request)
        authorizer = merchant.authorizer
        verdict = eligibility(authorizer)
        if not verdict.eligible:
            raise NotEligible(verdict, refused="kf accounts cannot be read")
        queued = services.kf_accounts_sync_request(authorizer=authorizer, actor=merchant.actor)
        # A sync already queued (not yet started) answers for this request too.
        return Response({"status": "queued" if queued else "already_queued"}, status=status.HTTP_202_ACCEPTED)


class KfAccountDelete(APIView):
    @extend_schema(request=None, responses={202: DeletionSerializer}, summary="Delete one kf account")
    def delete(self, request: Request, kf_account: str) -> Response:
        (deletion,) = _request_deletions(request, [kf_account])
        return Response(DeletionSerializer(deletion).data, status=status.HTTP_202_ACCEPTED)


class DeletionListCreate(generics.ListAPIView):
    serializer_class = DeletionSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[DeletionRequest]:
        queryset = DeletionRequest.objects.filter(authorizer=request_merchant(self.request).authorizer)
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in DeletionStatus.values:
                raise DomainError(f"status must be one of {', '.join(DeletionStatus.values)}")
            queryset = queryset.filter(status=wanted)
        return queryset

    @extend_schema(
        summary="Your deletions, newest first", parameters=[OpenApiParameter("status", str, enum=DeletionStatus.values)]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=DeletionCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="same key and body → same answer, nothing done twice",
            )
        ],
        responses={202: inline_serializer("DeletionsAccepted", {"deletions": DeletionSerializer(many=True)})},
        summary="Delete one or up to 1,000 kf accounts",
    )
    def post(self, request: Request) -> Response:
        body = DeletionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= 255):
            raise DomainError("Idempotency-Key must be 1 to 255 characters")
        single = "kf_account" in body.validated_data
        accounts = [body.validated_data["kf_account"]] if single else body.validated_data["kf_accounts"]
        deletions = _request_deletions(request, accounts, key)
        if single:
            return Response(DeletionSerializer(deletions[0]).data, status=status.HTTP_202_ACCEPTED)
        return Response({"deletions": DeletionSerializer(deletions, many=True).data}, status=status.HTTP_202_ACCEPTED)


class DeletionDetail(generics.RetrieveAPIView):
    serializer_class = DeletionSerializer

    def get_queryset(self) -> QuerySet[DeletionRequest]:
        # Scoped to the caller's merchant: another merchant's id is simply not found (404).
        return DeletionRequest.objects.filter(authorizer=request_merchant(self.request).authorizer)
