from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api.throttles import (
    LoginAddressThrottle,
    LoginUsernameThrottle,
    throttled,
)
from chat import views as chat_views

admin.site.site_header = "prodrag administration"
admin.site.site_title = "prodrag"
# The index links the Quality page for those who may see it.
admin.site.index_template = "admin/prodrag_index.html"

api_v1 = [
    path("", include("documents.api.urls")),
    path("", include("retrieval.api.urls")),
    path("", include("chat.api.urls")),
    path("", include("sources.api.urls")),
]

login_limited = throttled(LoginAddressThrottle, LoginUsernameThrottle)

urlpatterns = [
    # Before admin/, which would otherwise answer its sign-in page unlimited.
    path("admin/login/", login_limited(admin.site.login)),
    path("admin/quality/", admin.site.admin_view(chat_views.quality), name="admin-quality"),
    path(
        "admin/quality/<slug:name>.csv",
        admin.site.admin_view(chat_views.quality_csv),
        name="admin-quality-csv",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("scim/v2/", include("accounts.scim.urls")),
    path("chat/", include("chat.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", RedirectView.as_view(pattern_name="chat:home", permanent=False)),
]

handler404 = "core.api.not_found"
