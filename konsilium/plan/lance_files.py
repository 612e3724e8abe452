"""Bytes of a Lance table on disk, read from its files: all versions vs the latest one, and per index kind.

LanceDB keeps old versions (data files, index directories, manifests) until a cleanup; konsilium's index runs
keep five minutes of them, so right after a run the folder holds about twice the data. The latest manifest
names the files that version needs (data and transaction file names as strings, index ids as UUID bytes,
deletion files by their numeric id), which is what a cleanup would keep. Stdlib only: no lancedb import.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TableBytes:
    all_versions: int = 0  # everything in the table's folder now
    current_version: int = 0  # what the latest version needs: what is left after a cleanup of old versions
    indices: dict[str, int] = field(default_factory=dict)  # latest version's index bytes: vector, fulltext, scalar

    @property
    def old_versions(self) -> int:
        return self.all_versions - self.current_version

    def __add__(self, other: TableBytes) -> TableBytes:
        kinds = self.indices.keys() | other.indices.keys()
        return TableBytes(
            self.all_versions + other.all_versions,
            self.current_version + other.current_version,
            {k: self.indices.get(k, 0) + other.indices.get(k, 0) for k in kinds},
        )


def table_bytes(table_dir: Path, version: int) -> TableBytes:
    """The bytes of the Lance table in `table_dir` whose latest version is `version` (Table.version)."""
    table_dir = Path(table_dir)
    result = TableBytes(all_versions=_size(table_dir))
    manifest = _manifest(table_dir, version)
    if manifest is None:  # not a Lance folder we understand: count everything as current rather than guess
        result.current_version = result.all_versions
        return result
    named = manifest.read_bytes()
    current = manifest.stat().st_size + _size(table_dir / "_versions" / "latest_version_hint.json")
    for sub in ("data", "_transactions"):
        current += sum(_size(f) for f in _children(table_dir / sub) if f.name.encode() in named)
    for f in _children(table_dir / "_deletions"):  # "{fragment}-{read_version}-{id}.arrow|bin"
        parts = f.stem.split("-")
        if len(parts) == 3 and parts[2].isdigit() and _varint(int(parts[2])) in named:
            current += _size(f)
    for folder in _children(table_dir / "_indices"):
        if _uuid_bytes(folder.name) in named or folder.name.encode() in named:
            size = _size(folder)
            current += size
            kind = index_kind(folder)
            result.indices[kind] = result.indices.get(kind, 0) + size
    result.current_version = current
    return result


def index_kind(folder: Path) -> str:
    """What an index directory holds, from its files: IVF vector index, inverted (full-text) index, or scalar."""
    names = {f.name for f in _children(folder)}
    if "auxiliary.idx" in names or "index.idx" in names:
        return "vector"
    if any(name.endswith("_invert.lance") or name == "invert.lance" for name in names):
        return "fulltext"
    return "scalar"


def _manifest(table_dir: Path, version: int) -> Path | None:
    # V2 names count down from u64::MAX so the newest sorts first; V1 names are the version itself.
    for name in (f"{2**64 - 1 - version}.manifest", f"{version}.manifest"):
        path = table_dir / "_versions" / name
        if path.is_file():
            return path
    return None


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _uuid_bytes(name: str) -> bytes:
    try:
        return uuid.UUID(name).bytes
    except ValueError:
        return b"\0" * 32  # never found in a manifest


def _children(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def store_bytes(store) -> dict:
    """A LanceStore's bytes from its files (both tables): indices of the latest version, the folder now, and
    what a cleanup of old versions would leave. Keys extend `store.stats()["bytes"]`."""
    total = TableBytes()
    for table in (store.chunks, store.notes_table):  # named by generation after an `index --rebuild`
        total += table_bytes(Path(store.dir) / f"{table.name}.lance", table.version)
    return {
        "fulltext_index": total.indices.get("fulltext", 0),
        "vector_index": total.indices.get("vector", 0),
        "on_disk": total.all_versions,
        "on_disk_latest_version": total.current_version,
        "old_versions": total.old_versions,
    }


def measured_index(store) -> dict:
    """`store.stats()` with the index bytes read from the files and the disk figures `storage_plan` projects."""
    stats = store.stats()
    on_disk = store_bytes(store)
    stats["bytes"].update(fulltext_index=on_disk["fulltext_index"], vector_index=on_disk["vector_index"])
    stats["disk"] = {"all_versions": on_disk["on_disk"], "current_version": on_disk["on_disk_latest_version"]}
    return stats
