"""What can run: styles and generators, and where their weights come from.

Weight resolution order: an explicit file path, then the store, then a source that a plugin
declares (installed into the store once, sha256-checked). Nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from posterforge import presets
from posterforge.errors import PosterforgeError, UnknownNameError, WeightsError
from posterforge.models import Generator, Translator
from posterforge.plugins import PluginHost
from posterforge.records import Kind
from posterforge.store import Store
from posterforge.weights import (
    NATIVE,
    WeightSource,
    build_checked,
    check_buildable,
    convert_foreign,
    load_weights,
    read_header,
    sha256_file,
)

READY, IMPORTABLE, MISSING, BUILTIN = "ready", "importable", "missing", "no weights needed"


def _unloaded(arch: object, host: PluginHost) -> str | None:
    """The status of a style whose translator no loaded plugin provides, or None."""
    if isinstance(arch, str) and arch not in host.translators:
        return f"needs translator {arch!r} (its plugin is not loaded)"
    return None


def looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or spec.endswith((".safetensors", ".pth", ".pt"))


def check_free_name(name: str, host: PluginHost, store: Store, *, overwrite: bool) -> None:
    """A new model may not take the name of weights that a plugin ships (``vintage``,
    ``posters-demo``: the listings would describe the plugin's model), nor an existing store
    name unless ``overwrite``. Style names that wait for the user's weights (``yourname``) are
    free."""
    from posterforge.store import check_name

    check_name(name)
    if name in host.weight_sources:
        owner = host.weight_sources.entry(name).plugin
        raise PosterforgeError(
            f"{name!r} is the name of weights that plugin {owner!r} ships; choose another name"
        )
    if store.has(name) and not overwrite:
        raise PosterforgeError(f"weights named {name!r} exist already; pass --overwrite")


def import_checkpoint(
    path: Path,
    name: str,
    host: PluginHost,
    store: Store,
    *,
    fmt: str = "auto",
    overwrite: bool = False,
    expected_sha256: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Convert a foreign checkpoint into our format, into the store under ``name``."""
    path = Path(path)
    if expected_sha256 is not None and path.is_file():
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise WeightsError(
                f"{path}: sha256 mismatch (expected {expected_sha256[:12]}…, found {actual[:12]}…)"
            )
    if path.suffix == ".safetensors":  # our own format already: check it and store a copy
        weights = load_weights(path)
        if weights.arch not in host.translators and weights.arch not in host.generators:
            raise WeightsError(f"{path}: no installed plugin provides arch {weights.arch!r}")
        cls = (host.translators if weights.kind == Kind.TRANSLATOR else host.generators).get(
            weights.arch
        )
        check_buildable(cls, path, weights.header)
        return store.put(name, weights.tensors, weights.header, overwrite=overwrite)
    tensors, header, used = convert_foreign(path, host.importers, fmt)
    extra = dict(extra or {})
    provenance = {**header.get("provenance", {}), **extra.pop("provenance", {})}
    provenance.update(
        imported_from=path.name, importer=used, source_sha256=expected_sha256 or sha256_file(path)
    )
    header.update(extra, provenance=provenance)
    return store.put(name, tensors, header, overwrite=overwrite)


def install_source(source: WeightSource, host: PluginHost, store: Store) -> Path:
    found = source.locate()
    if found is None or not Path(found).is_file():
        raise WeightsError(f"weights {source.name!r} are not installed: {source.how_to_get}")
    if source.importer == NATIVE:
        return _install_native(source, Path(found), store)
    return import_checkpoint(
        Path(found),
        source.name,
        host,
        store,
        fmt=source.importer,
        expected_sha256=source.sha256,
        extra={
            "licence": source.licence,
            "description": source.description,
            "provenance": source.provenance,
        },
    )


def _install_native(source: WeightSource, path: Path, store: Store) -> Path:
    actual = sha256_file(path)
    if source.sha256 is not None and actual != source.sha256:
        raise WeightsError(
            f"{path}: sha256 mismatch (expected {source.sha256[:12]}…, found {actual[:12]}…)"
        )
    weights = load_weights(path)
    header = dict(weights.header)
    header.setdefault("licence", source.licence)
    header.setdefault("description", source.description)
    header["provenance"] = {**header.get("provenance", {}), **source.provenance}
    return store.put(source.name, weights.tensors, header)


def resolve_weights(spec: str, host: PluginHost, store: Store) -> Path:
    """Turn a weight name or path into a verified file path (see module docstring)."""
    return _find_weights(spec, host, store)[0]


def _find_weights(spec: str, host: PluginHost, store: Store) -> tuple[Path, str | None]:
    """The file of a weight name or path, and its sha256 when finding it hashed it (a stored
    file is checked against its sidecar; an explicit path is not hashed here)."""
    if looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: weight file not found")
        if path.suffix != ".safetensors":
            raise WeightsError(
                f"{path}: not in our format; import it first: "
                f"posterforge weights import {path} --name NAME"
            )
        return path, None
    if store.has(spec):
        return store.verified(spec)
    if spec in host.weight_sources:
        install_source(host.weight_sources[spec], host, store)
        return store.verified(spec)
    if spec in store.names():  # listed, but no weight file: say what it is, not "did you mean"
        problem = next((e.problem for e in store.entries() if e.name == spec), None)
        raise WeightsError(
            f"{store.path_for(spec)}: {problem or 'not a weight file'} "
            f"(posterforge weights rm {spec} removes it)"
        )
    raise UnknownNameError("weights", spec, [*store.names(), *host.weight_sources.names()])


@dataclass(frozen=True, eq=False)
class ResolvedModel:
    """A model resolved once for a run: its registered class and, unless it needs none, its
    weight file with the header (parsed once) and the sha256 (hashed once). Everything after
    resolution (building, naming the model in the outputs record) reads them from here."""

    name: str  # as the user named it: a style, a model name or a file
    kind: Kind
    cls: Any  # type[Translator] or type[Generator]
    path: Path | None = None
    header: dict[str, Any] | None = None
    sha256: str | None = None

    @property
    def model_id(self) -> str:
        """``arch:sha256`` (16 hex digits) of the weights that run; ``arch`` without weights."""
        if self.path is None or self.sha256 is None:
            return self.cls.name
        return f"{self.cls.name}:{self.sha256[:16]}"

    # the names callers of the former ResolvedStyle used
    @property
    def translator(self) -> Any:
        return self.cls

    @property
    def weights(self) -> Path | None:
        return self.path

    def build(self) -> Any:
        """The network on the CPU, checked against its file first (one line for a bad file)."""
        if self.path is None:
            return self.cls.build(None)
        return build_checked(self.cls, self.path, self.header)


def _resolved_file(
    name: str, kind: Kind | None, spec: str, host: PluginHost, store: Store
) -> ResolvedModel:
    """The :class:`ResolvedModel` of the weight file ``spec`` names, refused unless its header
    holds a model of ``kind`` (None: of the kind the header says)."""
    path, digest = _find_weights(spec, host, store)
    header = read_header(path)
    if kind is None:
        kind = Kind(header["kind"])
    elif header.get("kind") != kind:
        raise WeightsError(f"{path}: holds a {header.get('kind')}, not a {kind}")
    registry = host.translators if kind == Kind.TRANSLATOR else host.generators
    cls = registry.get(header["arch"])
    return ResolvedModel(name, kind, cls, path, header, digest or sha256_file(path))


def resolve_model(spec: str, kind: Kind, host: PluginHost, store: Store) -> ResolvedModel:
    """Resolve ``--style`` (``kind`` translator) or ``--model`` (generator) once."""
    if kind == Kind.TRANSLATOR:
        return resolve_style(spec, host, store)
    return _resolved_file(spec, Kind.GENERATOR, spec, host, store)


def resolve_any(spec: str, host: PluginHost, store: Store) -> ResolvedModel:
    """A style, a weight name or a weight file, as whichever kind it holds (``weights
    export``): a style or translator name as :func:`resolve_style` finds it, anything else
    by its file's header."""
    if not looks_like_path(spec) and (spec in host.presets["styles"] or spec in host.translators):
        return resolve_style(spec, host, store)
    name = Path(spec).stem if looks_like_path(spec) else spec
    return _resolved_file(name, None, spec, host, store)


# --- styles --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleInfo:
    name: str
    translator: str | None
    status: str
    description: str
    origin: str
    how_to_get: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weights_status(name: str, host: PluginHost, store: Store) -> str:
    if store.has(name):
        return READY
    source = host.weight_sources.find(name)
    if source is not None and source.locate() is not None:
        return IMPORTABLE
    return MISSING


def list_styles(host: PluginHost, store: Store) -> list[StyleInfo]:
    """Every style a user can name: presets, weightless translators, and translator weights in the
    store (trained or imported by the user)."""
    styles: dict[str, StyleInfo] = {}
    for name in presets.names("styles", host):
        p = presets.load("styles", name, host)
        weightless = _weightless(p.get("translator"), host)
        status = _unloaded(p.get("translator"), host) or (
            BUILTIN if weightless else _weights_status(p.get("weights", name), host, store)
        )
        styles[name] = StyleInfo(
            name,
            p.get("translator"),
            status,
            p.get("description", ""),
            f"preset:{host.presets['styles'].entry(name).plugin}",
            p.get("how_to_get", ""),
        )
    for entry in host.translators:
        if not entry.cls.needs_weights and entry.name not in styles:
            styles[entry.name] = StyleInfo(
                entry.name, entry.name, BUILTIN, entry.cls.description, f"plugin:{entry.plugin}"
            )
    for item in store.entries():
        usable = item.problem is None and item.name not in styles
        if usable and item.header.get("kind") == Kind.TRANSLATOR:
            arch = item.header["arch"]
            status = _unloaded(arch, host) or READY
            styles[item.name] = StyleInfo(
                item.name, arch, status, item.header.get("description", ""), "store"
            )
    return sorted(styles.values(), key=lambda s: s.name)


def _weightless(arch: object, host: PluginHost) -> type[Translator] | None:
    """The translator a style preset names, when it runs without weights."""
    cls = host.translators.find(arch) if isinstance(arch, str) else None
    return cls if cls is not None and not cls.needs_weights else None


def resolve_style(spec: str, host: PluginHost, store: Store) -> ResolvedModel:
    """Find the translator class and weight file for ``--style`` (a name or a weight file)."""
    if looks_like_path(spec):
        return _resolved_file(Path(spec).stem, Kind.TRANSLATOR, spec, host, store)
    preset = presets.load("styles", spec, host) if spec in host.presets["styles"] else None
    if preset is not None and (cls := _weightless(preset.get("translator"), host)) is not None:
        return ResolvedModel(spec, Kind.TRANSLATOR, cls)
    if preset is None and spec in host.translators:
        cls = host.translators.get(spec)
        if not cls.needs_weights:
            return ResolvedModel(spec, Kind.TRANSLATOR, cls)
    weights_name = preset.get("weights", spec) if preset else spec
    try:
        return _resolved_file(spec, Kind.TRANSLATOR, weights_name, host, store)
    except UnknownNameError:
        if preset is not None:
            raise WeightsError(
                f"style {spec!r} has no weights yet; {preset.get('how_to_get', '')}".rstrip("; ")
            ) from None
        known = [s.name for s in list_styles(host, store)]
        raise UnknownNameError("style", spec, known) from None


# --- generators ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratorInfo:
    name: str
    arch: str
    status: str
    description: str
    origin: str
    label_counts: dict[str, int] | None = None  # training images per label, when the run kept them
    labels: int | None = None  # how many labels it takes (None: unconditional, or not known)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def labels_note(self) -> str:
        """``"22"``, or ``"22, 2 untrained: war, western"``; the number of labels alone when the
        training counts are unknown; empty for an unconditional model."""
        if not self.label_counts:
            return str(self.labels) if self.labels else ""
        untrained = [n for n, c in self.label_counts.items() if c == 0]
        extra = f", {len(untrained)} untrained: {', '.join(untrained)}" if untrained else ""
        return f"{len(self.label_counts)}{extra}"


def _label_counts(header: dict[str, Any]) -> dict[str, int] | None:
    from posterforge.labels import labels_from_header

    if not isinstance(header.get("labels"), list):
        return None
    try:
        counts = labels_from_header(header).counts
    except (AttributeError, KeyError, TypeError, ValueError):  # a hand-made header: no counts
        return None
    return dict(counts) if counts else None


def list_generators(host: PluginHost, store: Store) -> list[GeneratorInfo]:
    """Generator models that can run: weights in the store or plugin-declared sources."""
    out: dict[str, GeneratorInfo] = {}
    for item in store.entries():
        if item.problem is None and item.header.get("kind") == Kind.GENERATOR:
            out[item.name] = GeneratorInfo(
                item.name,
                item.header["arch"],
                READY,
                item.header.get("description", ""),
                "store",
                _label_counts(item.header),
                len(item.header.get("labels", [])) or None,
            )
    for name, source in host.weight_sources.items():
        if name not in out and source.kind == Kind.GENERATOR:
            found = source.locate()
            header = _shipped_header(source, found)
            out[name] = GeneratorInfo(
                name, header.get("arch", ""), IMPORTABLE if found is not None else MISSING,
                source.description, "plugin", _label_counts(header),
                len(header.get("labels", [])) or None,
            )  # fmt: skip
    return sorted(out.values(), key=lambda g: g.name)


def _shipped_header(source: WeightSource, found: Path | None) -> dict[str, Any]:
    """The header of a plugin's weights in our own format, read without installing them (a
    foreign checkpoint has none to read: empty)."""
    if found is None or source.importer != NATIVE:
        return {}
    try:
        return read_header(Path(found))
    except WeightsError:
        return {}


def resolve_generator(spec: str, host: PluginHost, store: Store) -> tuple[type[Generator], Path]:
    """The generator class and weight file of ``--model`` (see :func:`resolve_model`)."""
    resolved = resolve_model(spec, Kind.GENERATOR, host, store)
    assert resolved.path is not None
    return resolved.cls, resolved.path
