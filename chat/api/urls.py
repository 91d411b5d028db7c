from django.urls import path
from rest_framework.routers import SimpleRouter

from chat.api.views import AnswerViewSet, AskView, ConversationViewSet

router = SimpleRouter()
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("answers", AnswerViewSet, basename="answer")

urlpatterns = [path("ask/", AskView.as_view(), name="ask"), *router.urls]
