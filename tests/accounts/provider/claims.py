import json
import os
from pathlib import Path

from oauth2_provider.oauth2_validators import OAuth2Validator


def people() -> dict:
    return json.loads(Path(os.environ["PROVIDER_PEOPLE"]).read_text())["people"]


class Claims(OAuth2Validator):
    """Every claim in the ID token and userinfo, whatever the scopes; groups as the people file
    says at this moment (a test may give a malformed one)."""

    oidc_claim_scope = None

    def get_additional_claims(self, request):
        person = people().get(request.user.username, {})
        claims = {
            "preferred_username": request.user.username,
            "email": f"{request.user.username}@idp.example",
            "given_name": request.user.username.title(),
            "family_name": "Provider",
        }
        if "groups" in person:
            claims["groups"] = person["groups"]
        return claims
