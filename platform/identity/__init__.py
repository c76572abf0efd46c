"""Identity and access: staff users and roles, sessions, signing keys and bearer tokens, OAuth2
clients for POS terminals and integrations, external OpenID Connect sign-in, members' global
identity (phone, card number, QR token) and their portal sign-in.

Read ``docs/decisions/0004-identity.md`` first; ``guards.py`` is what route handlers use.
"""
