"""The merchant REST API for cleanup rules and their runs. Views validate, call one service, serialize.

Every query is scoped to the caller's merchant: another merchant's rule or run is simply not found.
Rules for every merchant exist only in the admin; a merchant sees its own rules and every run that
was made for it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authorizers.api_keys import request_merchant
from cleanup import services
from cleanup.models import (
    CleanupRule,
    CleanupRun,
    InviteStatus,
    ListedAccount,
    RunItem,
)
from platform_app.pagination import NewestFirst, OldestFirst


class CleanupRuleSerializer(serializers.ModelSerializer):
    listed_count = serializers.SerializerMethodField()

    class Meta:
        model = CleanupRule
        # The rule's own fields are the ones the service accepts (services.RULE_FIELDS), same order.
        fields = ["id", *services.RULE_FIELDS, "listed_count", "created_at", "updated_at"]

    def get_listed_count(self, obj: CleanupRule) -> int:
        return obj.listed_accounts.count()


class CleanupRuleInput(serializers.ModelSerializer):
    """A rule's fields with the model's own validators (cleanup/validators.py), the checks the
    console's form makes; what they mean together (CleanupRule.clean()) the service checks."""

    invite_statuses = serializers.ListField(
        child=serializers.ChoiceField(InviteStatus.choices), max_length=2, required=False
    )

    class Meta:
        model = CleanupRule
        fields = list(services.RULE_FIELDS)
        extra_kwargs = {name: {"required": False} for name in services.RULE_FIELDS}


class RunItemSerializer(serializers.ModelSerializer):
    deletion_id = serializers.IntegerField(allow_null=True)
    deletion_status = serializers.SerializerMethodField()

    class Meta:
        model = RunItem
        fields = ["kf_account", "action", "matched_by", "skip_reason", "deletion_id", "deletion_status"]

    def get_deletion_status(self, obj: RunItem) -> str | None:
        return obj.deletion.status if obj.deletion else None


class CleanupRunSerializer(serializers.ModelSerializer):
    rule_id = serializers.IntegerField()
    approved_from_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = CleanupRun
        fields = [
            "id",
            "rule_id",
            "dry_run",
            "trigger",
            "status",
            "reason",
            "message",
            "present_count",
            "limit_accounts",
            "limit_percent",
            "matched_count",
            "created_count",
            "skipped_count",
            "succeeded_count",
            "failed_count",
            "rejected_count",
            "cancelled_count",
            "approved_from_id",
            "decided_at",
            "created_at",
            "started_at",
            "finished_at",
        ]


class CleanupRunDetailSerializer(CleanupRunSerializer):
    items = RunItemSerializer(many=True)

    class Meta(CleanupRunSerializer.Meta):
        fields = [*CleanupRunSerializer.Meta.fields, "items"]


class ListedAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = ListedAccount
        fields = ["kf_account", "delete_on", "note", "added_at"]


class ListedAccountsInput(serializers.Serializer):
    accounts = serializers.ListField(
        child=serializers.DictField(), max_length=services.MAX_LISTED, help_text="[{kf_account, delete_on, note?}]"
    )
    replace = serializers.BooleanField(default=False, help_text="replace the whole list instead of adding to it")


def _rules(request: Request) -> QuerySet[CleanupRule]:
    return CleanupRule.objects.filter(authorizer=request_merchant(request).authorizer, archived_at__isnull=True)


def _rule(request: Request, pk: int) -> CleanupRule:
    rule = _rules(request).filter(pk=pk).first()
    if rule is None:
        from rest_framework.exceptions import NotFound

        raise NotFound("no such cleanup rule")
    return rule


def _input(request: Request, *, partial: bool) -> dict[str, Any]:
    body = CleanupRuleInput(data=request.data, partial=partial)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class CleanupRuleListCreate(generics.ListAPIView):
    serializer_class = CleanupRuleSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[CleanupRule]:
        return _rules(self.request)

    @extend_schema(summary="Your cleanup rules")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=CleanupRuleInput,
        responses={201: CleanupRuleSerializer},
        summary="Create a cleanup rule (dry-run mode unless you say mode=delete)",
    )
    def post(self, request: Request) -> Response:
        merchant = request_merchant(request)
        values = _input(request, partial=False)
        rule = services.cleanup_rule_create(authorizer=merchant.authorizer, actor=merchant.actor, values=values)
        return Response(CleanupRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class CleanupRuleDetail(APIView):
    @extend_schema(responses=CleanupRuleSerializer, summary="One of your cleanup rules")
    def get(self, request: Request, pk: int) -> Response:
        return Response(CleanupRuleSerializer(_rule(request, pk)).data)

    @extend_schema(request=CleanupRuleInput, responses=CleanupRuleSerializer, summary="Change a cleanup rule")
    def patch(self, request: Request, pk: int) -> Response:
        rule = _rule(request, pk)
        values = _input(request, partial=True)
        rule = services.cleanup_rule_update(rule=rule, actor=request_merchant(request).actor, values=values)
        return Response(CleanupRuleSerializer(rule).data)

    @extend_schema(request=None, responses={204: None}, summary="Delete a cleanup rule (its runs stay)")
    def delete(self, request: Request, pk: int) -> Response:
        services.cleanup_rule_archive(rule=_rule(request, pk), actor=request_merchant(request).actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _start(request: Request, pk: int, *, dry_run: bool) -> Response:
    merchant = request_merchant(request)
    rule = _rule(request, pk)
    (run,) = services.cleanup_run_request(
        rule=rule,
        actor=merchant.actor,
        dry_run=dry_run,
        trigger="api",
        authorizer=merchant.authorizer,
    )
    return Response(CleanupRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class CleanupRuleDryRun(APIView):
    @extend_schema(
        request=None,
        responses={202: CleanupRunSerializer},
        summary="Preview the rule now: re-syncs, then lists what it would delete and why; deletes nothing",
        description="Poll GET /api/v1/cleanup-runs/{id}/ until the status is `previewed`; `items` is the list.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return _start(request, pk, dry_run=True)


class CleanupRuleRuns(generics.ListAPIView):
    serializer_class = CleanupRunSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[CleanupRun]:
        rule = _rule(self.request, self.kwargs["pk"])
        return CleanupRun.objects.filter(rule=rule, authorizer=request_merchant(self.request).authorizer)

    @extend_schema(summary="The runs of one rule, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=None,
        responses={202: CleanupRunSerializer},
        summary="Run a delete-mode rule now (blast-radius limits apply)",
    )
    def post(self, request: Request, pk: int) -> Response:
        return _start(request, pk, dry_run=False)


class CleanupRuleListedAccounts(generics.ListAPIView):
    serializer_class = ListedAccountSerializer
    pagination_class = OldestFirst

    def get_queryset(self) -> QuerySet[ListedAccount]:
        return ListedAccount.objects.filter(rule=_rule(self.request, self.kwargs["pk"]))

    @extend_schema(summary="The accounts this rule lists for deletion on a date")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ListedAccountsInput,
        responses={200: inline_serializer("ListedAccountsSaved", {"saved": serializers.IntegerField()})},
        summary="List accounts for deletion on a date (the rule needs use_list)",
    )
    def post(self, request: Request, pk: int) -> Response:
        rule = _rule(request, pk)
        body = ListedAccountsInput(data=request.data)
        body.is_valid(raise_exception=True)
        entries = services.listed_entries_check(body.validated_data["accounts"])
        saved = services.cleanup_listed_accounts_set(
            rule=rule,
            entries=entries,
            actor=request_merchant(request).actor,
            replace=body.validated_data["replace"],
        )
        return Response({"saved": saved})


class CleanupRunList(generics.ListAPIView):
    serializer_class = CleanupRunSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[CleanupRun]:
        return CleanupRun.objects.filter(authorizer=request_merchant(self.request).authorizer)

    @extend_schema(summary="Every cleanup run made for you, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class CleanupRunDetail(generics.RetrieveAPIView):
    serializer_class = CleanupRunDetailSerializer

    def get_queryset(self) -> QuerySet[CleanupRun]:
        return CleanupRun.objects.filter(authorizer=request_merchant(self.request).authorizer).prefetch_related(
            "items__deletion"
        )

    @extend_schema(summary="One run: what it matched, created and skipped, and the deletions' outcomes")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
