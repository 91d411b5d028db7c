from rest_framework.routers import SimpleRouter

from documents.api.views import CollectionViewSet, DocumentViewSet

router = SimpleRouter()
router.register("collections", CollectionViewSet, basename="collection")
router.register("documents", DocumentViewSet, basename="document")

urlpatterns = router.urls
