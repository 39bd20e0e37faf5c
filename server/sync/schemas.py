"""The sync calls' request and answer schemas: used to load requests and to generate /api/v1/openapi.json."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from shared.records import ChangeSchema, Instant, Text
from shared.roles import ROLES

NODE = validate.Regexp(r"^[0-9a-f]{16}$", error="must be 16 lowercase hex digits")


class ChangeList(fields.List):
    """A list of wire changes. Each is validated on its own later, so one bad change never fails the batch.

    So the document states an item as any JSON value, described: a change that is not a valid Change is
    answered ``rejected`` in its result (200), never with a 4xx.
    """

    def __init__(self, **kwargs):
        super().__init__(fields.Raw(metadata={
            "description": "a change, as Change (what a pull answers); each is checked on its own, and one that "
                           "is not a valid Change (an unknown kind, a bad field) is answered `rejected` in its "
                           "result, not with a 4xx"}), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("must be a list of changes")
        return value


class LoginRequest(Schema):
    username = Text(required=True, validate=validate.Length(min=1, max=80))
    password = fields.String(required=True, validate=validate.Length(max=200))
    device_name = Text(required=True, validate=validate.Length(min=1, max=200))
    node = Text(required=True, validate=NODE, metadata={"description": "the device's HLC node id"})


class CodeLoginRequest(Schema):
    code = Text(required=True, validate=validate.Length(min=1, max=64),
                metadata={"description": "the one-time code an admin gave (server/accounts.py); blanks and dashes ignored"})
    device_name = Text(required=True, validate=validate.Length(min=1, max=200))
    node = Text(required=True, validate=NODE, metadata={"description": "the device's HLC node id"})


class RevokeAnswer(Schema):
    revoked = fields.Boolean(required=True)


class UserSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class LoginAnswer(Schema):
    token = fields.String(required=True, metadata={"description": "shown once; send as Authorization: Bearer"})
    user = fields.Nested(UserSchema, required=True)
    buckets = fields.List(fields.String(), required=True)


class PushRequest(Schema):
    node = Text(required=True, validate=NODE)
    changes = ChangeList(required=True)
    sent_at = Instant(metadata={"description": "the device's own clock (not corrected) when it sent the push, "
                                               "as an HLC prints it (ISO 8601 UTC with milliseconds, 24 characters: "
                                               "2026-11-27T19:48:00.123Z); optional, used to record the device's "
                                               "clock skew"})


class PushResult(Schema):
    kind = fields.String(required=True)
    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["applied", "stale", "rejected"]))
    reason = fields.String(metadata={"description": "why a change was rejected; shown to the worker"})
    code = fields.String(metadata={"description": "a rejected change's reason as a code the app words itself "
                                                  "(not_your_grid, role_may_not, missing_evidence, ...; "
                                                  "docs/api.md); absent for other results and from older "
                                                  "servers, and a client ignores a code it does not know"})


class PushAnswer(Schema):
    results = fields.List(fields.Nested(PushResult), required=True)
    hlc = fields.String(required=True, metadata={"description": "the server's HLC; the device absorbs it"})


class WholeNumber(fields.Integer):
    """A JSON integer, in any of its spellings: 500 and 500.0 are one number to JSON Schema (and OpenAPI 3.1).

    A boolean, a string or a fraction is refused, as by a strict Integer.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        return super()._deserialize(value, attr, data, **kwargs)


class PullRequest(Schema):
    cursors = fields.Dict(keys=Text(), values=Text(allow_none=True), load_default=dict,
                          metadata={"description": "bucket → cursor from the last answer; a missing bucket "
                                                   "(or a null or empty cursor) starts from zero. The cursor of a "
                                                   "bucket you read must be one this server gave (its digits), "
                                                   "else 400; other buckets are ignored"})
    limit = WholeNumber(validate=validate.Range(min=1, max=2**31 - 1), load_default=None,
                        metadata={"description": "changes per page at most; the server caps it"})
    max_bytes = WholeNumber(validate=validate.Range(min=1, max=2**31 - 1), load_default=None,
                            metadata={"description": "a byte budget for the page (optional; added for bad links): "
                                                     "the server adds no change once the JSON of the changes "
                                                     "served reaches it, uncompressed, but always serves at least "
                                                     "one, so a page always moves; `more` says whether changes "
                                                     "were left. A server that predates it ignores it, so a "
                                                     "client still pages by `limit`"})


class PullAnswer(Schema):
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    cursors = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    more = fields.Boolean(required=True)
    hlc = fields.String(required=True)
