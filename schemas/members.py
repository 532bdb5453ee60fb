"""The members' forms (signup, profile, login, password reset). Error messages are catalog keys
(gateway/translations/members.json), shown next to their field in the member's language."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, pre_load, validate

SKILLS = (
    "nursing",
    "babysitting",
    "elderly_care",
    "shopping",
    "tutoring",
    "cooking",
    "repairs",
    "translation",
    "digital_help",
    "gardening",
)
MUNICIPI = tuple(range(1, 10))

_REQUIRED = {"required": "members.error.required", "null": "members.error.required"}


def _text(**kwargs: Any) -> fields.String:
    return fields.String(
        required=True, error_messages={**_REQUIRED, "invalid": "members.error.invalid"}, **kwargs
    )


class _Form(Schema):
    class Meta:
        unknown = EXCLUDE  # csrf_token, next, submit buttons

    @pre_load
    def _strip(self, data: Any, **_: Any) -> Any:
        # An empty optional field is absent, not an empty string to validate.
        return {k: v for k, v in dict(data).items() if v not in ("", [], None)}


def _email() -> fields.Email:
    return fields.Email(
        required=True, error_messages={**_REQUIRED, "invalid": "members.error.email"}
    )


# The profile's fields, made once each here and declared by both forms in their page's order
# (errors are listed in declaration order).
def _display_name() -> fields.String:
    return _text(
        validate=[
            validate.Length(1, 120, error="members.error.name_length"),
            # Spaces alone would be stored as an empty name.
            validate.Regexp(r".*\S", error="members.error.required"),
        ]
    )


def _locale() -> fields.String:
    return fields.String(
        load_default="it", validate=validate.OneOf(("it", "en"), error="members.error.invalid")
    )


def _skills() -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(SKILLS, error="members.error.invalid")),
        load_default=list,
    )


def _municipio() -> fields.Integer:
    return fields.Integer(
        load_default=None,
        allow_none=True,
        strict=False,
        validate=validate.OneOf(MUNICIPI, error="members.error.invalid"),
        error_messages={"invalid": "members.error.invalid"},
    )


class SignupForm(_Form):
    """Everything the signup page asks."""

    email = _email()
    display_name = _display_name()
    password = _text()
    locale = _locale()
    skills = _skills()
    municipio = _municipio()


class ProfileForm(_Form):
    """What a member may change later (the profile page): signup's fields but the address and
    password. An empty skills list or municipio clears them."""

    display_name = _display_name()
    locale = _locale()
    skills = _skills()
    municipio = _municipio()


class LoginForm(_Form):
    """Email and password."""

    email = _text(validate=validate.Length(1, 254, error="members.error.invalid"))
    password = _text(validate=validate.Length(1, 200, error="members.error.invalid"))


class EmailForm(_Form):
    """An address to send a reset link to."""

    email = _email()


class NewPasswordForm(_Form):
    """A new password, typed twice."""

    password = _text()
    confirm = _text()
