from django.urls import path

from accounts.scim import views

urlpatterns = [
    path("Users", views.Users.as_view()),
    path("Users/<int:pk>", views.OneUser.as_view()),
    path("Groups", views.Groups.as_view()),
    path("Groups/<int:pk>", views.OneGroup.as_view()),
    path("ServiceProviderConfig", views.ServiceProviderConfig.as_view()),
]
