"""What a role changes in a request and an answer: its system prompt, and the label on an alternative view."""

from __future__ import annotations

from .spec import RoleSpec


def with_role_prompt(messages: list[dict], role: RoleSpec | None) -> list[dict]:
    """The role's system prompt first; the caller's own system message follows it in the same message."""
    if role is None or not role.system_prompt.strip():
        return messages
    if messages and messages[0]["role"] in ("system", "developer"):
        return [dict(messages[0], content=f"{role.system_prompt}\n\n{messages[0]['content']}"), *messages[1:]]
    return [{"role": "system", "content": role.system_prompt}, *messages]


def disclaimer(role: RoleSpec | None) -> str:
    """An Obsidian callout that opens every answer of an `alternative` role (empty for neutral roles)."""
    if role is None or role.label != "alternative":
        return ""
    lines = role.disclaimer.strip().splitlines() or [""]
    body = "\n".join(f"> {line}".rstrip() for line in lines)
    return f"> [!warning] Alternative view: {role.id}\n{body}\n\n"


def opening_note(declined: str | None) -> str:
    """When a named role declined a request (a blocked topic), the neutral answer says so first."""
    if not declined:
        return ""
    return f"> [!note] Neutral answer\n> {declined}: the base model answers instead.\n\n"
