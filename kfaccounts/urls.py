from django.urls import path

from kfaccounts import api

urlpatterns = [
    path("kf-accounts/", api.KfAccountList.as_view(), name="api-kf-accounts"),
    path("kf-accounts/sync/", api.KfAccountSync.as_view(), name="api-kf-accounts-sync"),
    path("kf-accounts/<str:kf_account>/", api.KfAccountDelete.as_view(), name="api-kf-account"),
    path("deletions/", api.DeletionListCreate.as_view(), name="api-deletions"),
    path("deletions/<int:pk>/", api.DeletionDetail.as_view(), name="api-deletion"),
]
