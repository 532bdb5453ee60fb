"""Sign-on: the OAuth 2 / OpenID Connect provider and the protection of the API."""
