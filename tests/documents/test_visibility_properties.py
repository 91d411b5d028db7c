"""visible_to agrees with an independent reading of the rules, for random worlds."""

from hypothesis import HealthCheck, given, settings
from hypothesis.extra.django import TestCase

from accounts.models import User
from documents.models import Document
from tests.documents.worlds import expected_visible, world_build, worlds


class VisibleToProperties(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(world=worlds)
    def test_visible_to_matches_the_rules_before_and_after_changes(self, world):
        built = world_build(world)
        self.assert_matches(world, built.users, built.documents)
        built.change()
        self.assert_matches(world, built.users, built.documents)

    def assert_matches(self, world, users, documents):
        index_of = {doc.pk: i for i, doc in enumerate(documents)}
        for i, user in enumerate(users):
            user = User.objects.get(pk=user.pk)
            got = {
                index_of[pk]
                for pk in Document.objects.visible_to(user).values_list("pk", flat=True)
            }
            assert got == expected_visible(world, i), f"user {i}"
