"""SCIM 2.0 resources (RFC 7643) as prodrag reads and writes them: a User or Group body checked
attribute by attribute, the representation sent back, PATCH operations (RFC 7644 §3.5.2) and
the `eq` filters identity providers send. Every refusal is a ScimError with SCIM's status and
scimType, and a detail that names the attribute."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

# RFC 7643's User attributes: prodrag keeps the first group (and `groups`, read-only); the
# others are accepted and not stored, so that a provider's default mapping works. An attribute
# of neither kind is refused.
_USER_KEPT = {"username", "externalid", "name", "displayname", "emails", "active"}
_USER_IGNORED = {
    "nickname", "profileurl", "title", "usertype", "preferredlanguage", "locale", "timezone",
    "password", "phonenumbers", "ims", "photos", "addresses", "entitlements", "roles",
    "x509certificates", ENTERPRISE_SCHEMA.lower(),
}  # fmt: skip
_READ_ONLY = {"schemas", "id", "meta", "groups"}
_NAME_PARTS = {
    "formatted", "familyname", "givenname", "middlename", "honorificprefix", "honorificsuffix"
}  # fmt: skip
_GROUP_KEPT = {"displayname", "externalid", "members"}


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str = ""):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def body(self) -> dict:
        body = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def invalid(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


@dataclass(frozen=True)
class UserFields:
    """What prodrag keeps of a SCIM User."""

    username: str
    external_id: str
    first_name: str
    last_name: str
    email: str
    active: bool


@dataclass(frozen=True)
class GroupFields:
    display_name: str
    external_id: str
    members: tuple[str, ...] | None  # SCIM ids of users; None: not given


def _lower_keys(body: dict, where: str) -> dict:
    if not isinstance(body, dict):
        raise invalid(f"{where} must be a JSON object.", "invalidSyntax")
    lowered = {}
    for key, value in body.items():
        if key.lower() in lowered:
            raise invalid(f"{where}: the attribute {key!r} is given twice.", "invalidSyntax")
        lowered[key.lower()] = value
    return lowered


def _string(value, name: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise invalid(
            f"{name} must be a non-empty string." if required else f"{name} must be a string."
        )
    return value.strip()


def boolean(value, name: str) -> bool:
    """A SCIM boolean; Entra ID sends "True" and "False" as strings in PATCH."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(f"{name} must be a boolean.")


def _schemas(body: dict, schema: str) -> None:
    schemas = body.get("schemas")
    if schemas is None:
        return
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid("schemas must be a list of schema URIs.", "invalidSyntax")
    if schema not in schemas:
        raise invalid(f"schemas must include {schema}.", "invalidSyntax")


def user_fields(body: dict) -> UserFields:
    """A User body (POST, PUT, or the result of a PATCH) checked against RFC 7643."""
    _schemas(body, USER_SCHEMA)
    attributes = _lower_keys(body, "The User")
    unknown = set(attributes) - _USER_KEPT - _USER_IGNORED - _READ_ONLY
    if unknown:
        raise invalid(f"Unknown User attribute(s): {', '.join(sorted(unknown))}.", "invalidSyntax")
    name = attributes.get("name") or {}
    name = _lower_keys(name, "name")
    if unknown := set(name) - _NAME_PARTS:
        raise invalid(f"Unknown name attribute(s): {', '.join(sorted(unknown))}.", "invalidSyntax")
    for part, value in name.items():
        _string(value, f"name.{part}")
    emails = attributes.get("emails") or []
    if not isinstance(emails, list):
        raise invalid("emails must be a list.")
    addresses = []
    for email in emails:
        email = _lower_keys(email, "An email")
        if unknown := set(email) - {"value", "type", "primary", "display"}:
            raise invalid(
                f"Unknown email attribute(s): {', '.join(sorted(unknown))}.", "invalidSyntax"
            )
        value = _string(email.get("value"), "emails.value", required=True)
        primary = boolean(email.get("primary", False), "emails.primary")
        addresses.insert(0, value) if primary else addresses.append(value)
    return UserFields(
        username=_string(attributes.get("username"), "userName", required=True)[:150],
        external_id=_string(attributes.get("externalid"), "externalId")[:255],
        first_name=_string(name.get("givenname"), "name.givenName")[:150],
        last_name=_string(name.get("familyname"), "name.familyName")[:150],
        email=addresses[0][:254] if addresses else "",
        active=boolean(attributes.get("active", True), "active"),
    )


def group_fields(body: dict) -> GroupFields:
    _schemas(body, GROUP_SCHEMA)
    attributes = _lower_keys(body, "The Group")
    if unknown := set(attributes) - _GROUP_KEPT - _READ_ONLY:
        raise invalid(f"Unknown Group attribute(s): {', '.join(sorted(unknown))}.", "invalidSyntax")
    members = attributes.get("members")
    return GroupFields(
        display_name=_string(attributes.get("displayname"), "displayName", required=True)[:150],
        external_id=_string(attributes.get("externalid"), "externalId")[:255],
        members=None if members is None else member_ids(members),
    )


def member_ids(members) -> tuple[str, ...]:
    if not isinstance(members, list):
        raise invalid("members must be a list.")
    ids = []
    for member in members:
        member = _lower_keys(member, "A member")
        if unknown := set(member) - {"value", "display", "$ref", "type"}:
            raise invalid(
                f"Unknown member attribute(s): {', '.join(sorted(unknown))}.", "invalidSyntax"
            )
        ids.append(_string(member.get("value"), "members.value", required=True))
    return tuple(dict.fromkeys(ids))


# --- PATCH ---------------------------------------------------------------------------------------

_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$', re.IGNORECASE)


def patch_operations(body: dict) -> list[tuple[str, str, object]]:
    """The (op, path, value) triples of a PatchOp body; op lower-cased, path as given."""
    body = _lower_keys(body, "The PATCH body")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise invalid(f"schemas must be [{PATCH_SCHEMA}].", "invalidSyntax")
    operations = body.get("operations")
    if not isinstance(operations, list) or not operations:
        raise invalid("Operations must be a non-empty list.", "invalidSyntax")
    triples = []
    for operation in operations:
        operation = _lower_keys(operation, "An operation")
        op = operation.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid(f"op must be add, replace or remove, not {op!r}.", "invalidSyntax")
        path = operation.get("path", "")
        if not isinstance(path, str):
            raise invalid("path must be a string.", "invalidPath")
        if op.lower() != "remove" and "value" not in operation:
            raise invalid(f"{op} needs a value.", "noTarget")
        triples.append((op.lower(), path.strip(), operation.get("value")))
    return triples


def user_patched(current: dict, operations: list[tuple[str, str, object]]) -> dict:
    """The User representation `current` with the operations applied (then checked as a
    whole by user_fields)."""
    patched = copy.deepcopy(current)
    for op, path, value in operations:
        if not path:
            if op == "remove" or not isinstance(value, dict):
                raise invalid("An operation without a path needs an object value.", "noTarget")
            for key, item in value.items():
                _user_set(patched, key, item)
        elif op == "remove":
            _user_set(patched, path, None)
        else:
            _user_set(patched, path, value)
    return patched


def _user_set(user: dict, path: str, value) -> None:
    lowered = path.lower()
    if lowered.startswith(f"{ENTERPRISE_SCHEMA.lower()}:") or lowered in _USER_IGNORED:
        return
    if lowered.startswith("name."):
        part = lowered.removeprefix("name.")
        if part not in _NAME_PARTS:
            raise invalid(f"Unknown attribute {path!r}.", "invalidPath")
        keys = {"givenname": "givenName", "familyname": "familyName", "formatted": "formatted"}
        user.setdefault("name", {})[keys.get(part, part)] = value
        return
    if (
        re.fullmatch(r'emails\[\s*type\s+eq\s+"[^"]*"\s*\]\.value', lowered)
        or lowered == "emails.value"
    ):
        user["emails"] = [] if value is None else [{"value": value, "primary": True}]
        return
    keys = {
        "username": "userName", "externalid": "externalId", "displayname": "displayName",
        "active": "active", "emails": "emails", "name": "name",
    }  # fmt: skip
    if lowered not in keys:
        raise invalid(f"Unknown attribute {path!r}.", "invalidPath")
    if value is None:
        user.pop(keys[lowered], None)
    else:
        user[keys[lowered]] = value


def group_patched(fields: GroupFields, operations: list[tuple[str, str, object]]) -> GroupFields:
    """The group's fields with the operations applied: members added, removed (by filter or by
    list) or replaced, the name or external id replaced."""
    name, external_id = fields.display_name, fields.external_id
    members = list(fields.members or ())
    for op, path, value in operations:
        lowered = path.lower()
        if not path and op != "remove" and isinstance(value, dict):
            value = _lower_keys(value, "The value")
            if unknown := set(value) - _GROUP_KEPT - {"id"}:
                raise invalid(
                    f"Unknown Group attribute(s): {', '.join(sorted(unknown))}.", "invalidSyntax"
                )
            name = _string(value.get("displayname", name), "displayName", required=True)
            external_id = _string(value.get("externalid", external_id), "externalId")
            if "members" in value:
                added = member_ids(value["members"])
                members = list(added) if op == "replace" else members + list(added)
        elif lowered == "displayname" and op != "remove":
            name = _string(value, "displayName", required=True)
        elif lowered == "externalid":
            external_id = "" if op == "remove" else _string(value, "externalId")
        elif lowered == "members":
            if op == "remove":
                gone = set(member_ids(value)) if value is not None else set(members)
                members = [m for m in members if m not in gone]
            elif op == "replace":
                members = list(member_ids(value))
            else:
                members += list(member_ids(value))
        elif (match := _MEMBER_FILTER.match(path)) and op == "remove":
            members = [m for m in members if m != match.group(1)]
        else:
            raise invalid(f"Cannot {op} {path!r} of a Group.", "invalidPath")
    return GroupFields(
        display_name=name[:150],
        external_id=external_id[:255],
        members=tuple(dict.fromkeys(members)),
    )


# --- filters -------------------------------------------------------------------------------------

_FILTER = re.compile(r'^\s*([A-Za-z.]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


def filter_eq(expression: str, attributes: dict[str, str]) -> tuple[str, str]:
    """(field, value) of an `attribute eq "value"` filter over one of `attributes` (SCIM name,
    lower-cased, to field). Other filters are refused (invalidFilter)."""
    match = _FILTER.match(expression)
    if not match or match.group(1).lower() not in attributes:
        raise invalid(
            f"Only filters of the form 'attribute eq \"value\"' on "
            f"{', '.join(sorted(attributes))} are supported, not {expression!r}.",
            "invalidFilter",
        )
    return attributes[match.group(1).lower()], re.sub(r"\\(.)", r"\1", match.group(2))
