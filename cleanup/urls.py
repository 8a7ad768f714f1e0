from django.urls import path

from cleanup import api

urlpatterns = [
    path("cleanup-rules/", api.CleanupRuleListCreate.as_view(), name="api-cleanup-rules"),
    path("cleanup-rules/<int:pk>/", api.CleanupRuleDetail.as_view(), name="api-cleanup-rule"),
    path("cleanup-rules/<int:pk>/dry-run/", api.CleanupRuleDryRun.as_view(), name="api-cleanup-rule-dry-run"),
    path("cleanup-rules/<int:pk>/runs/", api.CleanupRuleRuns.as_view(), name="api-cleanup-rule-runs"),
    path(
        "cleanup-rules/<int:pk>/listed-accounts/",
        api.CleanupRuleListedAccounts.as_view(),
        name="api-cleanup-rule-listed",
    ),
    path("cleanup-runs/", api.CleanupRunList.as_view(), name="api-cleanup-runs"),
    path("cleanup-runs/<int:pk>/", api.CleanupRunDetail.as_view(), name="api-cleanup-run"),
]
