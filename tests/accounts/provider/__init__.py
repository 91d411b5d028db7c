"""A real OpenID provider for the sign-in tests: a small Django project running
django-oauth-toolkit with OpenID Connect on (authorization code, PKCE required, RS256 ID tokens,
discovery, JWKS, userinfo), in its own process on a loopback port (`python -m
tests.accounts.provider`). Its people, their passwords and groups come from a JSON file; the
groups claim is read from that file at each sign-in, so a test changes a person's groups the
way a directory administrator would. Its storage is a database of its own on the test
PostgreSQL server, made for each start and dropped at its stop."""
