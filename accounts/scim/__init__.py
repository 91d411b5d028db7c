"""SCIM 2.0 provisioning (RFC 7643, 7644) for identity providers that push users and groups:
Microsoft Entra ID, Okta and others call `/scim/v2/` with PRODRAG_SCIM_TOKEN as a bearer
token (docs/identity.md).

Written here rather than with django-scim2: that package maps SCIM onto models through
adapters and hands unknown attributes and wrong types to the adapters to judge; prodrag needs
the opposite default (refuse, with SCIM's error format, anything it would not keep right),
and a small surface (Users, Groups, `eq` filters, PATCH) that fits in three modules.
"""
