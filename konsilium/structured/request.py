"""OpenAI's `tools`, `tool_choice`, `parallel_tool_calls` and `response_format`, checked and put in our terms.

`structured_request` returns what the model is shown (`ToolUse`: the tools, how its text is read back) and what
its text must be (`engines.Constraint`, None for free text). Every mistake is a `RequestError` naming the field:
an unknown tool name, a tool_choice without tools, a schema that is not a JSON schema (checked against the JSON
Schema meta-schema, with the place of the fault) or whose `$ref` points nowhere. What a grammar engine cannot
compile is its own check (`grammar.compile_constraint`); an upstream gets what it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..engines.protocol import Constraint
from ..errors import RequestError

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function and schema names
CHOICES = ("none", "auto", "required")
EMPTY_PARAMETERS = {"type": "object", "properties": {}}


class ConstraintError(ValueError):
    """A constraint an engine's grammar cannot follow (a schema feature it lacks, a pattern it cannot read);
    `param` names the request field it came from."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ToolUse:
    """The tools a chat turn shows the model (none when tool_choice is `none`), and how its answer is read."""

    tools: tuple[dict, ...] = ()
    choice: str = "auto"  # "auto" | "required" | a function name ("none" shows no tools)
    parallel: bool = True

    @property
    def active(self) -> bool:
        """The model is offered tools, and its `<tool_call>` blocks become tool calls."""
        return bool(self.tools)

    def for_engine(self) -> list[dict] | None:
        return list(self.tools) if self.tools else None


def structured_request(
    tools=None, tool_choice=None, parallel_tool_calls=None, response_format=None
) -> tuple[ToolUse, Constraint | None]:
    """(what the model is shown, what its text must be) for a chat request's fields (parsed JSON, None if absent)."""
    definitions = parse_tools(tools)
    choice = parse_tool_choice(tool_choice, definitions)
    if parallel_tool_calls is not None and not isinstance(parallel_tool_calls, bool):
        raise RequestError("parallel_tool_calls must be true or false", param="parallel_tool_calls")
    parallel = parallel_tool_calls is not False
    fmt, schema = parse_response_format(response_format)
    shown = definitions if choice != "none" else ()
    use = ToolUse(shown, choice, parallel)
    passed = {"response_format": fmt, "tool_choice": openai_tool_choice(choice) if shown else None}
    if choice == "required":
        return use, Constraint(tools=definitions, parallel=parallel, **passed)
    if choice not in CHOICES:  # a named function: that one is called
        named = tuple(d for d in definitions if d["function"]["name"] == choice)
        return use, Constraint(tools=named, parallel=False, **passed)
    if schema is not None:  # JSON, or (auto) a call instead
        return use, Constraint(json_schema=schema, tools=shown, parallel=parallel, **passed)
    return use, None


def openai_tool_choice(choice: str) -> str | dict:
    return choice if choice in CHOICES else {"type": "function", "function": {"name": choice}}


# --- the fields ----------------------------------------------------------------------------------------------


def parse_tools(raw) -> tuple[dict, ...]:
    """OpenAI function tools, normalized: {"type": "function", "function": {"name", "description"?, "parameters",
    "strict"?}}."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RequestError("tools must be a list of function tools", param="tools")
    out, names = [], set()
    for index, tool in enumerate(raw):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise RequestError(f'{where}.type must be "function" (the only kind of tool supported)', param=where)
        function = tool.get("function")
        if not isinstance(function, dict):
            raise RequestError(f"{where}.function must be an object with a name", param=f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise RequestError(
                f"{where}.function.name must be 1 to 64 letters, digits, _ or - (got {name!r})",
                param=f"{where}.function.name",
            )
        if name in names:
            raise RequestError(f"{where}.function.name {name!r} is given twice", param=f"{where}.function.name")
        names.add(name)
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise RequestError(f"{where}.function.description must be a string", param=f"{where}.function.description")
        parameters = function.get("parameters") or EMPTY_PARAMETERS
        if parameters is not EMPTY_PARAMETERS:
            parameters = check_schema(parameters, f"{where}.function.parameters")
        if parameters.get("type", "object") != "object":
            raise RequestError(
                f'{where}.function.parameters must describe an object ("type": "object"): arguments are a JSON object',
                param=f"{where}.function.parameters",
            )
        clean = {"name": name, **({"description": description} if description else {}), "parameters": parameters}
        if isinstance(function.get("strict"), bool):
            clean["strict"] = function["strict"]
        out.append({"type": "function", "function": clean})
    return tuple(out)


def parse_tool_choice(raw, tools: tuple[dict, ...]) -> str:
    """ "none", "auto", "required" or the name of the function that must be called."""
    if raw is None:
        return "auto" if tools else "none"
    if isinstance(raw, str):
        if raw not in CHOICES:
            raise RequestError(
                'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}, '
                f"not {raw!r}",
                param="tool_choice",
            )
        choice = raw
    elif isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        choice = raw["function"].get("name")
        if not isinstance(choice, str) or not choice:
            raise RequestError("tool_choice.function.name must name one of the tools", param="tool_choice")
        if choice not in {tool["function"]["name"] for tool in tools}:
            known = ", ".join(tool["function"]["name"] for tool in tools) or "none were given"
            raise RequestError(
                f"tool_choice names {choice!r}, which is not one of the tools ({known})", param="tool_choice"
            )
    else:
        raise RequestError(
            'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}',
            param="tool_choice",
        )
    if choice == "required" and not tools:
        raise RequestError('tool_choice "required" needs tools to call', param="tool_choice")
    return choice


def parse_response_format(raw) -> tuple[dict | None, dict | None]:
    """(the format as an upstream is sent it, the schema the answer must match); (None, None) for plain text."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or raw.get("type") not in ("text", "json_object", "json_schema"):
        raise RequestError(
            'response_format must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", '
            '"json_schema": {"name": ..., "schema": {...}}}',
            param="response_format",
        )
    if raw["type"] == "text":
        return None, None
    if raw["type"] == "json_object":
        return {"type": "json_object"}, {"type": "object"}
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise RequestError(
            "response_format.json_schema must be an object with a name and a schema",
            param="response_format.json_schema",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise RequestError(
            f"response_format.json_schema.name must be 1 to 64 letters, digits, _ or - (got {name!r})",
            param="response_format.json_schema.name",
        )
    if spec.get("strict") is not None and not isinstance(spec.get("strict"), bool):
        raise RequestError("response_format.json_schema.strict must be true or false", param="response_format")
    schema = spec.get("schema")
    schema = {"type": "object"} if schema is None else check_schema(schema, "response_format.json_schema.schema")
    passed = {"name": name, "schema": schema}
    passed.update({key: spec[key] for key in ("description", "strict") if spec.get(key) is not None})
    return {"type": "json_schema", "json_schema": passed}, schema


# --- JSON schemas --------------------------------------------------------------------------------------------


def check_schema(schema, param: str) -> dict:
    """`schema` if it is a JSON schema object whose local `$ref`s resolve; else a RequestError saying where not."""
    from jsonschema import Draft202012Validator, SchemaError, validators

    if not isinstance(schema, dict):
        raise RequestError(f"{param} must be a JSON schema object, not {type(schema).__name__}", param=param)
    validator = validators.validator_for(schema, default=Draft202012Validator)
    try:
        validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        at = f" (at {where})" if where else ""
        raise RequestError(
            f"{param} is not a valid JSON schema: {exc.message}{at}", param=param, code="invalid_schema"
        ) from None
    for ref, where in _refs(schema):
        if not ref.startswith("#"):
            raise RequestError(
                f"{param}: $ref {ref!r} at {where or 'the root'} points outside the schema; only local references "
                "(#/$defs/...) are followed",
                param=param,
                code="invalid_schema",
            )
        if (ref == "#" or ref.startswith("#/")) and _resolve(schema, ref) is None:  # "#name": an $anchor
            raise RequestError(
                f"{param}: $ref {ref!r} at {where or 'the root'} points at nothing in the schema",
                param=param,
                code="invalid_schema",
            )
    return schema


def _refs(schema: dict):
    """Every `$ref` string in the schema, with where it is."""
    pending = [("", schema)]
    while pending:
        where, node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"], where
            pending.extend((f"{where}/{key}" if where else str(key), value) for key, value in node.items())
        elif isinstance(node, list):
            pending.extend((f"{where}/{i}", value) for i, value in enumerate(node))


_MISSING = object()


def _resolve(schema: dict, ref: str):
    """What a local JSON pointer (`#/$defs/x`) points at, None when nothing."""
    node = schema
    for part in (p for p in ref[1:].split("/") if p):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is _MISSING:
            return None
    return node
