from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.home, name="home"),
    path("ask/", views.ask, name="ask"),
    path("<int:pk>/", views.conversation, name="conversation"),
    path("answers/<int:pk>/regenerate/", views.regenerate, name="regenerate"),
    path("answers/<int:pk>/feedback/", views.feedback, name="feedback"),
    path("answers/<int:pk>/sources/<int:number>/", views.source, name="source"),
]
