"""`konsilium roles list|show|add|remove|versions|rollback` and `konsilium adapters list|add|remove`.

Nothing here loads the base model: adapters are checked from their config and safetensors header (kind, rank,
tensor pairs); the server checks shapes against the model when it loads them. Changes go to `roles.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..roles.registry import RoleRegistry
from ..roles.spec import LABELS, TIERS, AdapterSpec, RetrievalScope, RoleSpec, RoleSpecError
from ..roles.validation import AdapterError, check_info, inspect_adapter
from ..roles.versions import RoleVersion, list_versions, rollback
from .output import HomeOption, JsonOption, err, home_from, out, print_json, safe, safe_line, user_errors

roles_app = typer.Typer(help="Roles: model ids answering with LoRA adapters over the base model.", no_args_is_help=True)
adapters_app = typer.Typer(help="LoRA adapters (PEFT folders) the roles stack.", no_args_is_help=True)


def _registry(ctx: typer.Context, home) -> tuple[RoleRegistry, int]:
    """The registry (conflicts become warnings, so a broken setup can still be listed and repaired) and the
    configured maximum rank."""
    h = home_from(ctx, home)
    registry = RoleRegistry.open(h, strict=False)
    for problem in registry.problems:
        err.print(Text.assemble(("warning: ", "bold yellow"), safe_line(problem)), highlight=False)
    return registry, h.config.adapter_cache.max_rank


# --- roles --------------------------------------------------------------------------------------------------


def role_json(registry: RoleRegistry, role: RoleSpec) -> dict:
    return {"id": role.id, **role.to_dict(), "source": str(registry.role_source(role.id))}


def _adapter_list(role: RoleSpec) -> str:
    return ", ".join(f"{name}:{weight:g}" for name, weight in role.adapters.items()) or "base model alone"


@roles_app.command("list")
def list_roles(ctx: typer.Context, home: HomeOption = None, as_json: JsonOption = False):
    """Every role, from konsilium.yaml and roles.yaml."""
    with user_errors(as_json):
        registry, _ = _registry(ctx, home)
        roles = registry.roles()
    if as_json:
        print_json([role_json(registry, role) for role in roles])
        return
    if not roles:
        out.print(f"[dim]no roles yet (clients use the base model {registry.base_model_id!r}); add one with[/]")
        out.print("[dim]  konsilium roles add ID --adapter NAME[:WEIGHT] --description TEXT[/]")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("id", "label", "adapters", "description", "source"):
        table.add_column(column, overflow="fold")
    for role in roles:
        label = Text(role.label, style="yellow" if role.label == "alternative" else "")
        source = registry.role_source(role.id).name
        # Text cells, not markup strings; control characters from the files are shown, not executed.
        cells = (_adapter_list(role), role.description, source)
        table.add_row(Text(safe_line(role.id), style="cyan"), label, *(Text(safe_line(c)) for c in cells))
    out.print(table)
    out.print(f"[dim]base model: {registry.base_model_id}[/]")


@roles_app.command("show")
def show_role(
    ctx: typer.Context,
    role_id: Annotated[str, typer.Argument(metavar="ID", help="The role id.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """One role in full, with its adapters' files checked."""
    with user_errors(as_json):
        registry, max_rank = _registry(ctx, home)
        role = registry.role(role_id)
        adapters = [
            {**adapter_json(registry, spec, max_rank), "weight": weight} for spec, weight in _known(registry, role)
        ]
    if as_json:  # `adapters` keeps the shape `roles list` gives (a versioned role's `version`, `versions` too)
        print_json({**role_json(registry, role), "adapter_details": adapters})
        return
    field = _field_printer()
    field("id", role.id)
    if role.versions:
        field("version", f"{role.model_id}, {len(role.versions)} in all (konsilium roles versions {role.id})")
    field("description", role.description or "-")
    field("label", role.label)
    if role.disclaimer:
        field("disclaimer", role.disclaimer)
    field("system prompt", role.system_prompt or "-")
    field("topics", ", ".join(role.topics) or "any")
    if role.blocked_topics:
        field("blocked", ", ".join(role.blocked_topics))
    field("retrieval", _scope_text(role.retrieval))
    field("source", registry.role_source(role.id))
    if not adapters:
        field("adapters", "none (the base model alone)")
    for adapter in adapters:
        state = "ok" if adapter["ok"] else "problem: " + "; ".join(adapter["problems"])
        rank = f"rank {adapter['rank']}, " if adapter["rank"] is not None else ""
        field(f"{adapter['name']} ×{adapter['weight']:g}", f"{adapter['path']} ({rank}{adapter['tier']}) {state}")


def _known(registry: RoleRegistry, role: RoleSpec) -> list[tuple[AdapterSpec, float]]:
    # Lenient: a role naming a missing adapter is shown (the warning above says what is wrong).
    known = {spec.name for spec in registry.adapters()}
    return [(registry.adapter(name), weight) for name, weight in role.adapters.items() if name in known]


def _scope_text(scope: RetrievalScope | None) -> str:
    if scope is None:
        return "the server's default"
    if not scope.enabled:
        return "off"
    parts = [f"collections {', '.join(scope.collections)}" if scope.collections is not None else "default collection"]
    if scope.folders:
        parts.append(f"folders {', '.join(scope.folders)}")
    if scope.tags:
        parts.append(f"tags {', '.join('#' + t for t in scope.tags)}")
    return "; ".join(parts)


def _field_printer():
    def field(label: str, value) -> None:
        out.print(Text.assemble((f"{safe_line(label):>14}: ", "bold"), safe(value)))

    return field


def _parse_adapter_option(value: str) -> tuple[str, float]:
    name, sep, weight = value.rpartition(":")
    if not sep:
        return value, 1.0
    try:
        return name, float(weight)
    except ValueError:
        raise RoleSpecError(f"--adapter {value}: the weight after ':' must be a number, e.g. core:0.8") from None


@roles_app.command("add")
def add_role(
    ctx: typer.Context,
    role_id: Annotated[str, typer.Argument(metavar="ID", help="The role id clients send as `model`.")],
    adapter: Annotated[
        list[str] | None,
        typer.Option("--adapter", help="NAME or NAME:WEIGHT (weight in (0, 2], default 1); repeat to stack."),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the role is for.")] = "",
    system_prompt: Annotated[str, typer.Option("--system-prompt", help="Put before every conversation.")] = "",
    label: Annotated[str, typer.Option("--label", help=f"One of: {', '.join(LABELS)}.")] = "neutral",
    disclaimer: Annotated[
        str, typer.Option("--disclaimer", help="Shown with every answer; required for --label alternative.")
    ] = "",
    topic: Annotated[list[str] | None, typer.Option("--topic", help="An allowed topic; repeatable.")] = None,
    blocked_topic: Annotated[
        list[str] | None, typer.Option("--blocked-topic", help="A topic the role refuses; repeatable.")
    ] = None,
    collection: Annotated[
        list[str] | None, typer.Option("--collection", help="Retrieve from this collection; repeatable.")
    ] = None,
    folder: Annotated[list[str] | None, typer.Option("--folder", help="Only notes in this vault folder.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only notes with this tag; repeatable.")] = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="Answer without the notes.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a role of this id in roles.yaml.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Add a role to roles.yaml (its adapters must be defined already: `konsilium adapters add`)."""
    with user_errors(as_json):
        registry, _ = _registry(ctx, home)
        weights: dict[str, float] = {}
        for value in adapter or []:
            name, weight = _parse_adapter_option(value)
            if name in weights:
                raise RoleSpecError(f"--adapter {name} is given twice")
            weights[name] = weight
        scope = None
        if collection or folder or tag or no_retrieval:
            scope = RetrievalScope(
                collections=tuple(collection) if collection else None,
                folders=tuple(folder or ()),
                tags=tuple(tag or ()),
                enabled=not no_retrieval,
            )
        role = RoleSpec(
            id=role_id,
            description=description,
            adapters=weights,
            system_prompt=system_prompt,
            retrieval=scope,
            label=label,
            disclaimer=disclaimer,
            topics=tuple(topic or ()),
            blocked_topics=tuple(blocked_topic or ()),
        )
        registry.add_role(role, replace=replace)
    if as_json:
        print_json(role_json(registry, role))
        return
    out.print(f"added role [cyan]{role.id}[/] ({_adapter_list(role)}) to {registry.file_path}", highlight=False)


@roles_app.command("remove")
def remove_role(
    ctx: typer.Context,
    role_id: Annotated[str, typer.Argument(metavar="ID", help="The role id.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Remove a role from roles.yaml (one in konsilium.yaml is removed by editing that file)."""
    with user_errors(as_json):
        registry, _ = _registry(ctx, home)
        role = registry.remove_role(role_id)
        left = {spec.name for spec in registry.adapters()}
        dropped = [name for name in registry.trained_adapters(role) if name not in left]
    if as_json:
        removed = {"removed": role.id, "source": str(registry.file_path)}
        print_json({**removed, "adapters_removed": dropped} if role.versions else removed)
        return
    out.print(f"removed role [cyan]{role.id}[/] from {registry.file_path}", highlight=False)
    if dropped:
        out.print(f"and the adapters of its versions: {', '.join(dropped)} (their folders are kept)", highlight=False)


def _version_row(version: RoleVersion) -> tuple:
    weights = ", ".join(f"{name}:{weight:g}" for name, weight in version.adapters.items()) or "base model alone"
    created = version.created[:16].replace("T", " ") or "-"  # to the minute: the table stays narrow; --json has it all
    cells = (version.model_id, version.adapter or "-", weights, created, version.card or "-")
    marker = Text("*", style="bold green") if version.current else ""
    return (marker, str(version.version), *(Text(safe_line(cell)) for cell in cells))


@roles_app.command("versions")
def role_versions(
    ctx: typer.Context,
    role_id: Annotated[str, typer.Argument(metavar="ID", help="The role id.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """A role's trained versions (each a model id, ROLE@N); * marks the one the role id answers with."""
    with user_errors(as_json):
        registry, _ = _registry(ctx, home)
        versions = list_versions(registry, role_id)
    if as_json:
        print_json([version.to_json() for version in versions])
        return
    if not versions:
        out.print(f"[dim]role {safe_line(role_id)!r} has no versions yet; training adds them[/]", highlight=False)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("", "version", "model id", "adapter", "weights", "created", "card"):
        table.add_column(column, overflow="fold", no_wrap=column in ("version", "model id", "created"))
    for version in versions:
        table.add_row(*_version_row(version))
    out.print(table)


@roles_app.command("rollback")
def rollback_role(
    ctx: typer.Context,
    role_id: Annotated[str, typer.Argument(metavar="ID", help="The role id.")],
    to: Annotated[
        int | None, typer.Option("--to", min=1, help="The version to make current (default: the previous one).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Make an older version (or any other) the one the role id answers with; no version is deleted."""
    with user_errors(as_json):
        registry, _ = _registry(ctx, home)
        was = registry.role(role_id).model_id
        version = rollback(registry, role_id, to)
    if as_json:
        print_json({**version.to_json(), "previous": was})
        return
    out.print(f"role [cyan]{version.role}[/] now answers as {version.model_id} (was {was})", highlight=False)


# --- adapters -----------------------------------------------------------------------------------------------


def adapter_json(registry: RoleRegistry, spec: AdapterSpec, max_rank: int) -> dict:
    """The definition, what the folder holds and whether it passes the checks that need no model."""
    data = {
        "name": spec.name,
        "path": str(spec.path),
        "tier": spec.tier,
        "pinned": spec.pinned,
        "source": str(registry.adapter_source(spec.name)),
        "used_by": registry.users_of(spec.name),
        "peft_type": None,
        "rank": None,
        "target_modules": None,
        "bytes": None,
    }
    try:
        info = inspect_adapter(spec.path)
    except AdapterError as exc:
        return {**data, "ok": False, "problems": [str(exc)]}
    problems = check_info(info, max_rank)
    targets = info.target_modules
    return {
        **data,
        "peft_type": info.peft_type,
        "rank": info.max_rank,
        "target_modules": targets if isinstance(targets, str) else list(targets),
        "bytes": info.bytes,
        "ok": not problems,
        "problems": problems,
    }


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"


def live_adapters(url: str, api_key: str | None, timeout_s: float = 10.0) -> list[dict]:
    """GET /v1/adapters of a running server: where each adapter lives now."""
    import json
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(url.rstrip("/") + "/v1/adapters", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())["data"]
    except urllib.error.HTTPError as exc:
        raise ValueError(
            f"{url}/v1/adapters answered {exc.code}: {exc.read()[:200].decode(errors='replace')}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(
            f"no konsilium server answers at {url} ({reason}); start `konsilium serve` or drop --live"
        ) from None


def _with_live(rows: list[dict], live: list[dict]) -> list[dict]:
    """Each configured adapter gets its server state under "live" (None: not registered there); adapters only
    the server knows (loaded at run time, stacked roles) are added as rows of their own."""
    by_name = {item["name"]: item for item in live}
    merged = [{**row, "live": by_name.pop(row["name"], None)} for row in rows]
    for name, item in by_name.items():
        source = "runtime" if item.get("runtime") else "stacked role" if name.startswith("role:") else "server"
        merged.append(
            {
                "name": name,
                "path": None,
                "tier": item.get("preferred_tier"),
                "pinned": item.get("pinned"),
                "source": source,
                "used_by": [],
                "rank": None,
                "target_modules": None,
                "bytes": item.get("bytes"),
                "ok": True,
                "problems": [],
                "live": item,
            }
        )
    return merged


@adapters_app.command("list")
def list_adapters(
    ctx: typer.Context,
    live: Annotated[
        bool, typer.Option("--live", help="Also ask the running server where each adapter is now (GET /v1/adapters).")
    ] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="The server for --live (default http://server.host:server.port).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Every adapter with its rank, target modules, size on disk and whether its files pass the checks."""
    with user_errors(as_json):
        registry, max_rank = _registry(ctx, home)
        rows = [adapter_json(registry, spec, max_rank) for spec in registry.adapters()]
        if live:
            from ..server.settings import api_keys

            h = home_from(ctx, home)
            keys = api_keys(h.config.server.api_keys)
            url = url or f"http://{h.config.server.host}:{h.config.server.port}"
            rows = _with_live(rows, live_adapters(url, keys[0] if keys else None))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("[dim]no adapters yet; add a PEFT LoRA folder with `konsilium adapters add NAME PATH`[/]")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("name", "tier", "rank", "targets", "size", *(("now", "in use") if live else ())):
        table.add_column(column, overflow="fold")
    table.add_column("state", overflow="fold", min_width=24)  # the reason a folder is broken matters most
    table.add_column("path", overflow="fold")
    for row in rows:
        tier = row["tier"] + (" pinned" if row["pinned"] else "")
        targets = row["target_modules"]
        targets = targets if isinstance(targets, str) or targets is None else ",".join(targets)
        # The path has its own column; a problem naming it again would only push the table wider.
        problems = [p.replace(row["path"] + "/", "").replace(row["path"] + ": ", "") for p in row["problems"]]
        broken = "broken: " + safe_line("; ".join(problems))
        state = Text("ok", style="green") if row["ok"] else Text(broken, style="red")
        rank = "-" if row["rank"] is None else str(row["rank"])
        size = _size(row["bytes"])
        now = ()
        if live:
            state_now = row["live"]
            now = (state_now["tier"], str(state_now["in_use"])) if state_now else ("not on the server", "-")
        name, targets, path = Text(safe_line(row["name"]), style="cyan"), safe_line(targets or "-"), row["path"] or "-"
        table.add_row(name, tier, rank, Text(targets), size, *now, state, Text(safe_line(path)))
    out.print(table)


@adapters_app.command("add")
def add_adapter(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The name roles use for it.")],
    path: Annotated[Path, typer.Argument(help="The PEFT folder (adapter_config.json + adapter_model.safetensors).")],
    tier: Annotated[str, typer.Option("--tier", help=f"Where it rests: {', '.join(TIERS)}.")] = "cpu",
    pinned: Annotated[bool, typer.Option("--pinned", help="Keep it on the compute device at all times.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an adapter of this name.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Check a PEFT LoRA folder and add it to roles.yaml; a broken one is refused with the reason."""
    with user_errors(as_json):
        registry, max_rank = _registry(ctx, home)
        spec = AdapterSpec(name=name, path=registry.stored_path(path), tier=tier, pinned=pinned)
        info = inspect_adapter(path)
        problems = check_info(info, max_rank)
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            raise AdapterError(f"adapter {name!r} refused: {path}: " + "; ".join(problems[:3]) + more)
        registry.add_adapter(spec, replace=replace)
        row = adapter_json(registry, registry.adapter(name), max_rank)
    if as_json:
        print_json(row)
        return
    out.print(
        f"added adapter [cyan]{name}[/] (rank {info.max_rank}, {_size(info.bytes)}, tier {tier}"
        f"{', pinned' if pinned else ''}) to {registry.file_path}",
        highlight=False,
    )


@adapters_app.command("remove")
def remove_adapter(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The adapter's name.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
):
    """Remove an adapter from roles.yaml (refused while a role uses it). Its folder is left alone."""
    with user_errors(as_json):
        registry, _ = _registry(ctx, home)
        spec = registry.remove_adapter(name)
    if as_json:
        print_json({"removed": spec.name, "source": str(registry.file_path)})
        return
    out.print(f"removed adapter [cyan]{spec.name}[/] from {registry.file_path} (its folder is kept)", highlight=False)
