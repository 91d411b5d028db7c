from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from accounts.api.throttles import LoginAddressThrottle, LoginUsernameThrottle, throttled

login_limited = throttled(LoginAddressThrottle, LoginUsernameThrottle)

urlpatterns = [
    path("login/", login_limited(auth_views.LoginView.as_view()), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/start/", views.SingleSignOnStart.as_view(), name="oidc-start"),
    path("oidc/callback/", views.SingleSignOnDone.as_view(), name="oidc-callback"),
]
