"""`konsilium plan` (memory/speed arithmetic for a model config), `plan train`, `plan storage`, `konsilium explain`.

Deliberately imports only typer, rich and konsilium.plan: planning must not pay for torch, transformers or lancedb.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from ..plan import Hardware, PlanError, analyze, apply_overrides, explain_file, load_config, parse_bytes, plan
from ..plan.explain import change_kind
from ..plan.fields import KIND_TEXT
from ..plan.memory import CARDS
from ..plan.storage import storage_plan
from ..plan.training import TRAIN_MODES, TRAIN_PRECISIONS, training_plan

_out = Console()
_err = Console(stderr=True, soft_wrap=True)


class _DefaultToModel(TyperGroup):
    """`konsilium plan CONFIG ...` runs the hidden-by-default `model` command; `plan train` and `plan storage` stay
    subcommands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["model", *args]
        return super().parse_args(ctx, args)


plan_app = typer.Typer(
    cls=_DefaultToModel,
    help="What a model config costs: parameters, weights, KV cache, fit on your GPUs, decode speed bound.\n\n"
    "Usage: konsilium plan CONFIG [--set field=value ...] with the options of `plan model`, "
    "konsilium plan train CONFIG (does a training run fit?), or konsilium plan storage --pages N.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        _print_json({"error": {"message": message}})
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _gb(n) -> str:
    if n is None:
        return "-"
    return f"{n / 1e9:,.2f} GB"


def _gib(n) -> str:
    return "-" if n is None else f"{n / 2**30:,.2f} GiB"


def _params(n: int) -> str:
    return f"{n / 1e9:,.3f} B ({n:,})"


def _yesno(v) -> str:
    return "-" if v is None else ("yes" if v else "no")


ROWS = [
    ("model type", "model_type", str),
    ("total parameters", "total_params", _params),
    ("active parameters / token", "active_params", _params),
    ("bits per weight", "bits_per_weight", lambda v: f"{v:g} ({'dtype'})"),
    ("weights", "weights_bytes", _gb),
    ("KV bytes / token", "kv_bytes_per_token", lambda v: f"{v:,.0f}"),
    ("KV cache (context x batch)", "kv_cache_bytes", _gb),
    ("adapters", "adapters_bytes", _gb),
    ("activations + workspace (estimate)", "activation_bytes_estimate", _gb),
    ("total", "total_bytes", _gb),
    ("fits on GPU", "fits", _yesno),
    ("largest context that fits", "max_context_fits", lambda v: "-" if v is None else f"{v:,}"),
    ("trained context", "trained_context", lambda v: "-" if v is None else f"{v:,}"),
    ("extended context (RoPE scaling)", "extended_context", lambda v: "-" if v is None else f"{v:,}"),
    ("bytes read per decoded token", "bytes_read_per_token", _gb),
    ("decode tokens/s (upper bound)", "decode_tokens_per_s_upper_bound", lambda v: "-" if v is None else f"{v:,.1f}"),
]


def _cell(result: dict, key: str, fmt) -> str:
    if key == "bits_per_weight":
        return f"{result[key]:g} ({result['dtype']})"
    return fmt(result.get(key))


def _print_notes(result: dict) -> None:
    off = result.get("offload")
    if off:
        line = (
            f"offload: {_gb(off['gpu_weights_bytes'])} of weights on GPU, {_gb(off['cpu_weights_bytes'])} in CPU "
            f"RAM ({off['cpu_fraction']:.0%}); fits with offload: {_yesno(off['fits_with_offload'])}"
        )
        if off.get("reason"):
            line += f" — {off['reason']}"
        _out.print(line, highlight=False)
    if result.get("decode_note"):
        _out.print(
            f"[dim]decode: {result['decode_note']} ({result['bandwidth_source']}, {result['bandwidth_gbs']:g} GB/s)[/]",
            highlight=False,
        )
    _out.print(f"[dim]activations: {result['activation_note']}[/]", highlight=False)
    _out.print(f"[dim]context: {escape(result['context_scaling']['how'])}[/]", highlight=False)
    for note in result["notes"]:
        _out.print(f"[dim]note: {escape(note)}[/]", highlight=False)


def _change_list(changes: dict) -> list[dict]:
    """--set changes as JSON rows, each labelled inference knob / retraining / unknown."""
    return [
        {
            "field": k,
            "from": old,
            "to": new,
            "change": change_kind(k),
            "change_text": KIND_TEXT.get(change_kind(k), ("unknown field: check before relying on it",))[0],
        }
        for k, (old, new) in changes.items()
    ]


@plan_app.command("model")
def plan_model(
    config: Annotated[str, typer.Argument(help="config.json, a model directory, or a .gguf file.")],
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field: --set rope_scaling.factor=4.")
    ] = None,
    dtype: Annotated[str, typer.Option(help="Weights: bf16, fp16, fp8, int8, int4, q4_k_m, q8_0.")] = "bf16",
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="KV cache: bf16, fp16, fp8, int8, q8_0, q4_0.")] = "bf16",
    context: Annotated[int, typer.Option(help="Tokens of context per sequence.")] = 32768,
    batch: Annotated[int, typer.Option(help="Sequences served at once.")] = 1,
    lora_rank: Annotated[int, typer.Option("--lora-rank", help="LoRA rank of each adapter.")] = 0,
    lora_targets: Annotated[
        str, typer.Option("--lora-targets", help="Comma-separated linears, e.g. q_proj,v_proj.")
    ] = "q_proj,k_proj,v_proj,o_proj",
    adapters: Annotated[int, typer.Option(help="How many adapters are loaded at once.")] = 0,
    gpu_mem: Annotated[str | None, typer.Option("--gpu-mem", help="Memory per GPU: 24GB, 80GiB, 96GB.")] = None,
    gpus: Annotated[int, typer.Option(help="GPUs per node (tensor parallel within a node).")] = 1,
    nodes: Annotated[int, typer.Option(help="Nodes (pipeline parallel across them, over a Ray cluster).")] = 1,
    utilization: Annotated[
        float, typer.Option("--gpu-memory-utilization", help="Share of each GPU vLLM may use.")
    ] = 0.9,
    card: Annotated[str | None, typer.Option(help="A known card: h100, rtx4090, rtx-pro-6000, ...")] = None,
    cpu_mem: Annotated[str | None, typer.Option("--cpu-mem", help="RAM for offloaded weights: 128GB.")] = None,
    bandwidth: Annotated[float | None, typer.Option(help="GPU memory bandwidth in GB/s.")] = None,
    cpu_bandwidth: Annotated[float, typer.Option("--cpu-bandwidth", help="RAM bandwidth in GB/s.")] = 60.0,
    compare: Annotated[bool, typer.Option(help="Show the config before and after --set side by side.")] = False,
    as_json: JsonOpt = False,
):
    """Plan memory and speed for CONFIG (the default command of `konsilium plan`)."""
    try:
        base_cfg = load_config(config)
        cfg, changes = apply_overrides(base_cfg, sets or [])
        if compare and not changes:
            raise PlanError("--compare needs at least one --set FIELD=VALUE to compare against")
        if nodes < 1:
            raise PlanError("--nodes must be at least 1")
        hw = Hardware(
            gpu_mem=parse_bytes(gpu_mem) if gpu_mem else None,
            gpus=gpus * nodes,
            cpu_mem=parse_bytes(cpu_mem) if cpu_mem else None,
            bandwidth=bandwidth,
            cpu_bandwidth=cpu_bandwidth,
            card=card.lower() if card else None,
        )
        if gpus < 1:
            raise PlanError("--gpus must be at least 1")
        targets = [t.strip() for t in lora_targets.split(",") if t.strip()] if lora_rank else []
        knobs = dict(
            dtype=dtype,
            kv_dtype=kv_dtype,
            context=context,
            batch=batch,
            lora_rank=lora_rank,
            lora_targets=targets,
            adapters=adapters,
            hw=hw,
        )
        shape = analyze(cfg)
        result = plan(shape, **knobs)
        base = plan(analyze(base_cfg), **knobs) if compare else None
        if hw.gpu_mem or card:
            capacity = result.get("gpu_mem_bytes") or hw.gpu_mem
            result["parallel"] = _parallel(config, shape, cfg, result, capacity, gpus, nodes, utilization, knobs)
    except (PlanError, OSError) as exc:
        _fail(str(exc), as_json)
        return
    change_list = _change_list(changes)
    if as_json:
        if compare:
            _print_json({"base": base, "changed": result, "changes": change_list})
        else:
            _print_json({**result, "overrides": change_list})
        return
    title = f"{Path(config).name}" + (f" with {', '.join(sets or [])}" if sets else "")
    table = Table(title=title)
    table.add_column("")
    if compare:
        table.add_column("as given", justify="right")
        table.add_column("with --set", justify="right")
    else:
        table.add_column("value", justify="right")
    for label, key, fmt in ROWS:
        if compare:
            a, b = _cell(base, key, fmt), _cell(result, key, fmt)
            table.add_row(label, a, b if a == b else f"[bold]{b}[/]")
        else:
            table.add_row(label, _cell(result, key, fmt))
    _out.print(table)
    for c in change_list:
        _out.print(f"{c['field']}: {c['from']!r} -> {c['to']!r}: {c['change_text']}", highlight=False)
    _print_notes(result)
    if "parallel" in result:
        _print_parallel(result["parallel"])


def _parallel(config, shape, cfg, result, gpu_mem, gpus, nodes, utilization, knobs) -> dict:
    """The TP/PP split, its `vllm serve` line and konsilium.yaml engine section."""
    from ..plan.parallel import command_line, engine_section, recommend, vllm_serve_args

    path = Path(config)
    model = str(path.parent if path.suffix == ".json" else path)  # vLLM takes the folder that holds config.json
    split = recommend(shape, cfg, result, gpu_mem, gpus, nodes, utilization)
    args = vllm_serve_args(model, split, result, knobs["lora_rank"], knobs["adapters"])
    return {**split, "vllm_serve": command_line(args), "engine": engine_section(model, split, result)}


def _print_parallel(split: dict) -> None:
    tp, pp = split["tensor_parallel_size"], split["pipeline_parallel_size"]
    ep = ", expert parallel" if split["enable_expert_parallel"] else ""
    verdict = "fits" if split["fits"] else "[red]does not fit[/]"
    _out.print(
        f"split: TP {tp} x PP {pp} = {split['gpus_used']} GPUs{ep}: {_gb(split['per_gpu_bytes'])} a GPU of "
        f"{_gb(split['usable_per_gpu_bytes'])} usable — {verdict}",
        highlight=False,
    )
    for note in split["notes"]:
        _out.print(f"[dim]note: {escape(note)}[/]", highlight=False)
    _out.print("\n# vLLM as the upstream:", markup=False, highlight=False)
    _out.print(split["vllm_serve"], markup=False, highlight=False, soft_wrap=True)
    _out.print("\n# or in-process, konsilium.yaml:\nengine:", markup=False, highlight=False)
    for key, value in split["engine"].items():
        shown = json.dumps(value) if isinstance(value, bool) else value
        _out.print(f"  {key}: {shown}", markup=False, highlight=False)


TRAIN_ROWS = [
    ("frozen weights", "weights_bytes"),
    ("trainable parameters (fp32)", "trainable_bytes"),
    ("gradients (fp32)", "gradients_bytes"),
    ("AdamW states (2 x fp32)", "optimizer_bytes"),
    ("activations for backward", "activations_bytes"),
    ("logits around the loss", "logits_bytes"),
    ("CUDA context, allocator (fixed)", "overhead_bytes"),
    ("total", "total_bytes"),
]


def _train_capacity(gpu_mem: str | None, card: str | None, ram: str | None, precision: str) -> tuple:
    """(bytes to fit in, what they are) from one of --gpu-mem, --card, --ram; (None, None) without any."""
    given = [name for name, value in (("--gpu-mem", gpu_mem), ("--card", card), ("--ram", ram)) if value]
    if len(given) > 1:
        raise PlanError(f"give one of --gpu-mem, --card, --ram, not {' and '.join(given)}")
    if card:
        if card.lower() not in CARDS:
            raise PlanError(f"--card {card!r}: known cards are {', '.join(CARDS)}")
        return CARDS[card.lower()][0], f"--card {card.lower()}"
    if ram:
        if precision == "4bit":  # the device check training_plan leaves to its caller
            raise PlanError("--precision 4bit (QLoRA) needs a CUDA GPU with bitsandbytes; --ram plans a CPU run")
        return parse_bytes(ram), f"--ram {ram}"
    return (parse_bytes(gpu_mem), f"--gpu-mem {gpu_mem}") if gpu_mem else (None, None)


def _train_verdict(r: dict, against: str | None) -> str:
    if r["fits"] is None:
        return "give --gpu-mem, --card or --ram to check whether it fits"
    share = f"{_gib(r['total_bytes'])} of {_gib(r['capacity_bytes'])} ({against})"
    if r["fits"]:
        longest = f"longest --seq-len that fits: {r['max_seq_len_fits']:,}"
        return f"fits: {share}, {_gib(r['headroom_bytes'])} to spare; {longest}"
    fixed = r["total_bytes"] - r["activations_bytes"] - r["logits_bytes"]
    hint = (
        f"--seq-len {r['max_seq_len_fits']:,} would fit"
        if r["max_seq_len_fits"]
        else f"even --seq-len 1 does not fit: weights, trainable state and overhead alone take {_gib(fixed)}"
    )
    if not r["gradient_checkpointing"]:
        with_ckpt = r["total_bytes"] - r["activations_bytes"] + r["activations_bytes_with_checkpointing"]
        hint += f"; with gradient checkpointing it needs {_gib(with_ckpt)}"
    return f"does not fit: needs {share}, {_gib(-r['headroom_bytes'])} short; {hint}"


@plan_app.command("train")
def plan_train(
    config: Annotated[str, typer.Argument(help="config.json, a model directory, or a .gguf file.")],
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field: --set num_hidden_layers=24.")
    ] = None,
    precision: Annotated[str, typer.Option(help=f"Training precision: {', '.join(TRAIN_PRECISIONS)}.")] = "bf16",
    mode: Annotated[
        str,
        typer.Option(help=f"{' | '.join(TRAIN_MODES)}: LoRA on --targets; LoRA on q/k/v/o; MoE routers in full."),
    ] = "lora",
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    targets: Annotated[
        str | None, typer.Option(help="Comma-separated linears for --mode lora (default q,k,v,o,gate,up,down).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Sequences per step (micro-batch).")] = 1,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")] = 1024,
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute in backward.")
    ] = True,
    gpu_mem: Annotated[str | None, typer.Option("--gpu-mem", help="GPU memory to fit in: 24GB, 80GiB.")] = None,
    card: Annotated[str | None, typer.Option(help="A known card: rtx4090, h100, rtx-pro-6000, ...")] = None,
    ram: Annotated[str | None, typer.Option(help="RAM to fit in, for a CPU run: 64GB.")] = None,
    as_json: JsonOpt = False,
):
    """Does a training run fit? Weights, LoRA, gradients, AdamW, activations, logits; exit 1 when it does not."""
    try:
        cfg, changes = apply_overrides(load_config(config), sets or [])
        capacity, against = _train_capacity(gpu_mem, card, ram, precision.lower())
        names = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
        result = training_plan(
            analyze(cfg),
            precision=precision.lower(),
            mode=mode.lower(),
            rank=rank,
            targets=names,
            batch=batch,
            seq_len=seq_len,
            gradient_checkpointing=gradient_checkpointing,
            capacity_bytes=capacity,
            device="cpu" if ram else "cuda",
        )
    except (PlanError, OSError) as exc:
        _fail(str(exc), as_json)
        return
    result["capacity_source"] = against
    verdict = _train_verdict(result, against)
    if as_json:
        extra = {"error": {"message": verdict}} if result["fits"] is False else {}
        _print_json({**result, "overrides": _change_list(changes), **extra})
    else:
        _print_train(config, sets, result)
        if result["fits"] is not False:
            _out.print(verdict, highlight=False)
    if result["fits"] is False:
        _err.print(f"[bold red]error:[/] {escape(verdict)}", highlight=False)
        raise typer.Exit(1)


def _print_train(config: str, sets: list[str] | None, r: dict) -> None:
    table = Table(title=f"{Path(config).name}" + (f" with {', '.join(sets)}" if sets else ""))
    table.add_column(f"{r['mode']} training, {r['precision']}")
    table.add_column("memory", justify="right")
    for label, key in TRAIN_ROWS:
        table.add_row(f"[bold]{label}[/]" if key == "total_bytes" else label, _gib(r[key]))
    _out.print(table)
    what = f"LoRA rank {r['rank']}" if r["mode"] != "router" else "in full"
    modules = ", ".join(m.removeprefix("model.layers.*.") for m in r["trained_modules"])
    ckpt = "with" if r["gradient_checkpointing"] else "without"
    _out.print(
        f"batch {r['batch']} x {r['seq_len']:,} tokens {ckpt} gradient checkpointing (activations "
        f"{_gib(r['activations_bytes_with_checkpointing'])} with, "
        f"{_gib(r['activations_bytes_without_checkpointing'])} without); trainable {r['trainable_params']:,} of "
        f"{r['total_params']:,} parameters, {what}: {modules}",
        highlight=False,
    )
    for warning in r["serving_warnings"]:
        _out.print(f"[yellow]serving:[/] {escape(warning)}", highlight=False)
    if r["needs"]:
        _out.print(f"[dim]needs: {', '.join(r['needs'])}[/]", highlight=False)
    for note in r["notes"]:
        _out.print(f"[dim]note: {escape(note)}[/]", highlight=False)


@plan_app.command("storage")
def plan_storage(
    ctx: typer.Context,
    pages: Annotated[int, typer.Option(help="Pages of notes (2,000 characters each).")],
    from_index: Annotated[
        bool, typer.Option("--from-index", help="Use bytes per chunk measured on this machine's index.")
    ] = False,
    home: Annotated[Path | None, typer.Option("--home", help="State directory (default: $KONSILIUM_HOME).")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection to measure.")] = None,
    as_json: JsonOpt = False,
):
    """Disk and RAM for N pages: text, chunks, vectors, full-text index."""
    measured = None
    try:
        if from_index:
            measured = _measure(home or (ctx.obj or {}).get("home"), collection)
        result = storage_plan(pages, measured)
    except (PlanError, OSError) as exc:
        _fail(str(exc), as_json)
        return
    if from_index and measured is None:
        result["note"] = "no index found: documented defaults used"
    if as_json:
        _print_json(result)
        return
    table = Table(title=f"{pages:,} pages ≈ {result['chunks']:,} chunks — {result['source']}")
    table.add_column("part")
    table.add_column("bytes", justify="right")
    for part, size in result["bytes"].items():
        label = f"{part} (projected)" if part == result["projected"] else part
        table.add_row(label, _gb(size))
    table.add_row("RAM (estimate)", _gb(result["ram_bytes_estimate"]))
    _out.print(table)
    _out.print(f"[dim]{result['disk_note']}; {result['vector_index_note']}[/]", highlight=False)
    if result.get("note"):
        _out.print(f"[dim]{result['note']}[/]")


def _measure(home: Path | None, collection: str | None) -> dict | None:
    """This machine's index stats, or None when there is no index (loads lancedb: storage only)."""
    from ..config import ConfigError, open_home

    try:
        h = open_home(home, create=False) if home else open_home()
    except ConfigError as exc:
        raise PlanError(str(exc)) from exc
    if not Path(h.index_dir).exists():
        return None
    from ..index.indexer import open_store
    from ..plan.lance_files import measured_index

    try:
        store, _ = open_store(h, collection)
        stats = measured_index(store)  # index bytes and old versions from the files themselves
    except Exception as exc:  # noqa: BLE001 - any store failure means "no usable index"
        _err.print(f"[yellow]note:[/] index not readable ({exc}); using defaults", highlight=False)
        return None
    return stats if stats.get("chunks") else None


def explain(
    file: Annotated[
        Path,
        typer.Argument(
            help="config.json, tokenizer_config.json, generation_config.json or "
            "adapter_config.json (or a model directory)."
        ),
    ],
    lang: Annotated[str, typer.Option(help="Language: en or ru.")] = "en",
    as_json: JsonOpt = False,
):
    """Every field of a model file: meaning, typical values, inference knob vs retraining, memory/speed effect."""
    try:
        result = explain_file(file, lang)
    except (PlanError, OSError) as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        _print_json(result)
        return
    ru = lang == "ru"
    table = Table(title=f"{result['file']} ({result['kind']})", show_lines=True)
    for col in (
        ["поле", "значение", "смысл", "типично", "изменение", "влияние"]
        if ru
        else ["field", "value", "meaning", "typical", "change", "effect"]
    ):
        table.add_column(col, overflow="fold")
    for f in result["fields"]:
        if f["known"]:
            table.add_row(f["field"], f["value"], f["meaning"], f["typical"], f["change_text"], f["effect"])
        else:
            table.add_row(f["field"], f["value"], f"[yellow]{f['meaning']}[/]", "", "", "")
    _out.print(table)
    window = result.get("context")
    if window and window["extended"]:
        label = "контекст: обучение" if ru else "context: trained"
        extended = "расширенный" if ru else "extended"
        _out.print(
            f"{label} {window['trained']:,}, {extended} {window['extended']:,} ({escape(window['how'])})",
            highlight=False,
        )
