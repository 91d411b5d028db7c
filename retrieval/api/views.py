import dataclasses

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from retrieval.api.serializers import (
    FiltersSerializer,
    SearchRequestSerializer,
    SearchResponseSerializer,
)
from retrieval.selectors import SearchError
from retrieval.services import search_perform


class SearchView(APIView):
    """POST: the k passages the user may read that rank best for the query, with citations."""

    required_scope = ApiToken.Scope.READ  # a read, though it is a POST

    @extend_schema(request=SearchRequestSerializer, responses=SearchResponseSerializer)
    def post(self, request):
        given = SearchRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            result = search_perform(
                user=request.user,
                query=data["query"],
                k=data["k"],
                mode=data["mode"],
                filters=FiltersSerializer.filters(data.get("filters", {})),
                collapse=data["per_document"],
                expand=data["expand"],
            )
        except SearchError as error:
            raise exceptions.ValidationError(str(error)) from error
        return Response(SearchResponseSerializer(dataclasses.asdict(result)).data)
