"""The record kinds as a Markdown table, so docs/records.md is written from the code, not beside it."""

from __future__ import annotations

from marshmallow import fields as mf

from .records import KINDS


def _type_of(field: mf.Field) -> str:
    name = type(field).__name__
    if isinstance(field, mf.List):
        return f"list of {_type_of(field.inner)}"
    if isinstance(field, mf.Nested):
        schema = field.schema
        return "{" + ", ".join(schema.fields) + "}"
    return {"Text": "text", "Code": "code", "Bool": "bool", "Int": "int", "Number": "number",
            "Instant": "UTC time", "Day": "date", "Id": "uuid", "Location": "location"}.get(name, name.lower())


def records_markdown() -> str:
    """docs/records.md: every kind, its bucket rule, and its fields."""
    lines = ["# Record kinds", "",
             "Written from `shared/records.py` by `python -m shared.describe > docs/records.md`; a test keeps it",
             "current. Required fields are those a change creating the record must carry. Append-only kinds keep",
             "the first write of every field (see `shared/merge.py`).", ""]
    for kind in KINDS.values():
        if kind.reference:
            where = "`ref`"
        elif kind.parent:
            where = f"the bucket of its `{kind.parent[0]}` ({kind.parent[1]})"
        else:
            where = "`grid:<grid>`"
        extra = ", append-only" if kind.append_only else ""
        lines += [f"## `{kind.name}`", "", f"Bucket: {where}{extra}.", "", "| field | type | required |",
                  "|---|---|---|"]
        for name, field in kind.validator.fields.items():
            lines.append(f"| `{name}` | {_type_of(field)} | {'yes' if field.required else ''} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(records_markdown(), end="")
