from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person or integration that reads documents; knowledge managers are staff users."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
