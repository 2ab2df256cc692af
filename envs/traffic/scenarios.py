"""Traffic scenarios: SUMO networks and routes, generated with SUMO's own tools or given as files.

Built-in scenarios (``single``, ``arterial``, ``grid``) are made at first use with ``netgenerate``
and ``tools/randomTrips.py`` from the ``eclipse-sumo`` wheel, seeded, and cached under
``$CTRLGYM_CACHE`` (default ``~/.cache/ctrlgym``) by their parameters. Any user network works
too: ``Scenario.from_files("my.net.xml", "my.rou.xml")`` or ``Scenario.from_sumocfg(...)``, which
runs as its ``.sumocfg`` says (SUMO is handed the config itself). RESCO's eight benchmark maps
(Ault & Sharon 2021) load from the installed ``sumo-rl`` package: ``resco_scenario("cologne8")``,
or ``scenario="resco:cologne8"`` in an env.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ctrlgym.envs.traffic.errors import ScenarioError
from ctrlgym.envs.traffic.network import is_green_phase

__all__ = [
    "Scenario",
    "ScenarioError",
    "make_scenario",
    "resolve_scenario",
    "resco_scenario",
    "validate_routes",
    "actuated_programs",
    "sumo_home",
    "sumo_binary",
    "SCENARIO_KINDS",
    "RESCO_MAPS",
]

SCENARIO_KINDS = ("single", "arterial", "grid")
RESCO_MAPS = (
    "grid4x4",
    "arterial4x4",
    "cologne1",
    "cologne3",
    "cologne8",
    "ingolstadt1",
    "ingolstadt7",
    "ingolstadt21",
)
#: each RESCO map's env defaults, as RESCO runs it (its ``map_config`` and ``main.py``): a decision every
#: 10 s with 3 s of yellow, but every 5 s with 2 s on arterial4x4; teleports off (``--time-to-teleport -1``)
RESCO_SETTINGS = {
    name: {
        "delta_time": 5 if name == "arterial4x4" else 10,
        "yellow_time": 2 if name == "arterial4x4" else 3,
        "time_to_teleport": -1,
    }
    for name in RESCO_MAPS
}
#: the twin's queue-model parameters per map where ``benchmarks/calibrate_twin.py`` found better
#: ones than the 4x4-grid defaults (``benchmarks/results/calibrate_twin_resco.json``, with the transfers
#: across unsignalled junctions: cologne3 at 0.85 veh/s has delay gaps of +3 / -30 / -22 / -12% under
#: fixed-time / max-pressure / max-wave / random; cologne8, whose lights give many permissive greens,
#: -6% and -14% under max-pressure and max-wave at 0.7 veh/s and a permissive share of 0.45)
RESCO_TWIN_PARAMETERS = {
    "cologne3": {"saturation_flow": 0.85},
    "cologne8": {"saturation_flow": 0.7, "permissive_share": 0.45},
}


def sumo_home() -> Path:
    """SUMO's install folder: the ``eclipse-sumo`` wheel's, else ``$SUMO_HOME``.

    The wheel comes first because ``import libsumo`` points ``$SUMO_HOME`` at a data-only folder.
    """
    try:
        import sumo

        return Path(sumo.SUMO_HOME)
    except ImportError:
        if os.environ.get("SUMO_HOME"):
            return Path(os.environ["SUMO_HOME"])
        raise ImportError("the traffic family needs SUMO: pip install 'ctrlgym[traffic]'") from None


def sumo_binary(name: str = "sumo") -> str:
    path = sumo_home() / "bin" / name
    return str(path) if path.exists() else name


@dataclass(frozen=True)
class Scenario:
    """A SUMO network with its demand: what a traffic env simulates.

    ``sumocfg`` set: SUMO is started with ``-c sumocfg``, so every option in the file holds
    (begin, end, step length, teleports, routing, outputs); ``begin``/``end``/``step_length`` are
    the file's, read here so the env can count time. ``defaults`` are env keyword defaults the
    scenario comes with (RESCO's decision interval and yellow time; under ``"twin"``, the twin's
    queue-model parameters calibrated for the map).
    """

    name: str
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...] = ()
    duration: int = 3600  # seconds of demand: end - begin of a sumocfg, else the route files' span
    extra: dict = field(default_factory=dict, compare=False)
    sumocfg: Path | None = None
    begin: float = 0.0
    end: float | None = None
    step_length: float = 1.0
    defaults: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for path in (self.net_file, *self.route_files, *self.additional_files):
            if not Path(path).is_file():
                raise ScenarioError(f"scenario {self.name!r}: file not found: {path}")
        try:
            root = ElementTree.parse(self.net_file).getroot()
        except ElementTree.ParseError as err:
            raise ScenarioError(f"scenario {self.name!r}: {self.net_file} is not valid XML: {err}") from None
        if root.tag != "net":
            raise ScenarioError(f"scenario {self.name!r}: {self.net_file} is not a SUMO network (root <{root.tag}>)")
        if not self.step_length > 0:
            raise ScenarioError(f"scenario {self.name!r}: step-length must be > 0, got {self.step_length}")

    @classmethod
    def from_files(
        cls,
        net_file: str | Path,
        route_files: str | Path | Sequence[str | Path],
        name: str | None = None,
        duration: int = 3600,
    ) -> Scenario:
        """A user network and route file(s)."""
        routes = [route_files] if isinstance(route_files, (str, Path)) else list(route_files)
        return cls(
            name or Path(net_file).name.split(".")[0], Path(net_file), tuple(Path(r) for r in routes), duration=duration
        )

    @classmethod
    def from_sumocfg(cls, config_file: str | Path, name: str | None = None, defaults: dict | None = None) -> Scenario:
        """The scenario a ``.sumocfg`` file describes; SUMO runs the file itself (``-c``)."""
        config_file = Path(config_file)
        if not config_file.is_file():
            raise ScenarioError(f"sumocfg file not found: {config_file}")
        try:
            root = ElementTree.parse(config_file).getroot()
        except ElementTree.ParseError as err:
            raise ScenarioError(f"{config_file} is not valid XML: {err}") from None

        def value(*tags: str) -> str | None:
            for tag in tags:
                element = root.find(f".//{tag}")
                if element is not None and element.get("value") is not None:
                    return (element.get("value") or "").strip()
            return None

        def files(*tags: str) -> list[Path]:
            return [config_file.parent / v.strip() for v in (value(*tags) or "").split(",") if v.strip()]

        def seconds(*tags: str) -> float | None:
            text = value(*tags)
            if text is None:
                return None
            try:
                return sumo_time(text)
            except ValueError:
                raise ScenarioError(f"{config_file}: <{tags[0]}> is not a time: {text!r}") from None

        nets = files("net-file", "n")
        if not nets:
            raise ScenarioError(f"{config_file}: no <net-file> in the configuration")
        begin, end = seconds("begin", "b") or 0.0, seconds("end", "e")
        if end is not None and end <= begin:
            raise ScenarioError(f"{config_file}: <end> {end} is not after <begin> {begin}")
        return cls(
            name or config_file.name.split(".")[0],
            nets[0],
            tuple(files("route-files", "r")),
            tuple(files("additional-files", "a")),
            duration=int(end - begin) if end is not None else 3600,
            sumocfg=config_file.resolve(),
            begin=begin,
            end=end,
            step_length=seconds("step-length") or 1.0,
            defaults=dict(defaults or {}),
        )


def sumo_time(text: str) -> float:
    """Seconds from a SUMO time value: ``25200``, ``25200.5`` or ``7:00:00`` (h:m:s)."""
    parts = [float(p) for p in str(text).split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def resco_scenario(name: str) -> Scenario:
    """One of RESCO's eight benchmark maps (Ault & Sharon, NeurIPS 2021 Datasets and Benchmarks),
    read from the ``sumo-rl`` package's ``nets/RESCO/<map>/<map>.sumocfg``, with the env defaults
    RESCO runs it with (:data:`RESCO_SETTINGS`).

    sumo-rl's copies of ingolstadt7 and ingolstadt21 comment out signal phases that RESCO's
    originals have (on both, the green ``rrrrrrGGGGrr`` of the light ``cluster_306484187_…``; on
    ingolstadt21 also an all-red phase of light ``243641585``): those two run from a copy of the net with the phases restored
    (:func:`restore_commented_phases`). The other six nets are RESCO's byte for byte."""
    if name not in RESCO_MAPS:
        raise ScenarioError(f"unknown RESCO map {name!r}; choose one of {RESCO_MAPS}")
    spec = importlib.util.find_spec("sumo_rl")  # found, not imported: sumo_rl's import needs $SUMO_HOME
    if spec is None or not spec.submodule_search_locations:
        raise ScenarioError(
            f"scenario 'resco:{name}' needs the RESCO maps of sumo-rl: pip install 'ctrlgym[benchmarks]' (or pip install sumo-rl)"
        )
    config = Path(spec.submodule_search_locations[0]) / "nets" / "RESCO" / name / f"{name}.sumocfg"
    if not config.is_file():
        raise ScenarioError(
            f"scenario 'resco:{name}': {config} is missing from the installed sumo-rl; reinstall it (pip install --force-reinstall sumo-rl)"
        )
    defaults = {**RESCO_SETTINGS[name], "twin": RESCO_TWIN_PARAMETERS.get(name, {})}
    return Scenario.from_sumocfg(restore_commented_phases(config), name=f"resco:{name}", defaults=defaults)


_COMMENTED_PHASE = re.compile(rb"<!--\s*(<phase\b[^>]*/>)\s*-->")


def restore_commented_phases(config: Path) -> Path:
    """``config`` itself when its net has no commented-out ``<phase>``; else a cached copy of the
    config whose net has those phases back (RESCO's original program), routes and other files
    where they were."""
    scenario = Scenario.from_sumocfg(config)
    original = Path(scenario.net_file).read_bytes()
    restored, count = _COMMENTED_PHASE.subn(rb"\1", original)
    if count == 0:
        return config
    key = hashlib.sha1(original + str(config.resolve()).encode()).hexdigest()[:10]
    folder = _cache_root() / "restored" / f"{config.stem}-{key}"
    net_out, config_out = folder / Path(scenario.net_file).name, folder / config.name
    if not config_out.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tree = ElementTree.parse(config)
        for tag, paths in (
            ("net-file", [net_out]),
            ("route-files", scenario.route_files),
            ("additional-files", scenario.additional_files),
        ):
            element = tree.getroot().find(f".//{tag}")
            if element is not None:
                element.set("value", ",".join(str(Path(p).resolve()) for p in paths))
        for out, write in ((net_out, lambda p: p.write_bytes(restored)), (config_out, tree.write)):
            partial = out.with_name(f".{out.name}.{os.getpid()}")
            write(partial)
            os.replace(partial, out)
    return config_out


@functools.lru_cache(maxsize=32)
def _net_contents(net_file: Path, stamp: float) -> tuple[frozenset[str], dict[str, set[str]]]:
    """The non-internal edge ids of a network and each light's program types (read once per file version)."""
    edges: set[str] = set()
    programs: dict[str, set[str]] = {}
    try:
        for _, element in ElementTree.iterparse(net_file):
            if element.tag == "edge" and element.get("function") != "internal":
                edges.add(element.attrib["id"])
            elif element.tag == "tlLogic":
                programs.setdefault(element.attrib["id"], set()).add(element.get("type", "static"))
            element.clear()
    except ElementTree.ParseError as err:
        raise ScenarioError(f"{net_file} is not valid XML: {err}") from None
    return frozenset(edges), programs


def net_contents(net_file: Path) -> tuple[frozenset[str], dict[str, set[str]]]:
    net_file = Path(net_file).resolve()
    return _net_contents(net_file, net_file.stat().st_mtime)


_EDGE_ATTRIBUTES = {
    "route": ("edges",),
    "trip": ("from", "to", "via"),
    "flow": ("from", "to", "via"),
    "vehicle": ("from", "to", "via"),
}


def validate_routes(scenario: Scenario) -> None:
    """Check, before SUMO starts, that every edge a route, trip, flow or vehicle names is in the
    network; ``ScenarioError`` naming the vehicle, the edge and the file otherwise."""
    edges, _ = net_contents(scenario.net_file)
    departures = 0
    for path in scenario.route_files:
        unknown: list[tuple[str, str, str]] = []
        departing = 0
        owner_stack: list[tuple[str, str]] = []
        try:
            for event, element in ElementTree.iterparse(path, events=("start", "end")):
                tag = element.tag
                if event == "start":
                    if tag in ("vehicle", "trip", "flow", "route"):
                        owner_stack.append((tag, element.get("id", "?")))
                    departing += tag in ("vehicle", "trip", "flow", "personTrip", "person")
                    continue
                for attribute in _EDGE_ATTRIBUTES.get(tag, ()):
                    for edge in (element.get(attribute) or "").split():
                        if edge not in edges:
                            owner = (
                                next((o for o in reversed(owner_stack[:-1]) if o[0] != "route"), owner_stack[-1])
                                if owner_stack
                                else (tag, "?")
                            )
                            unknown.append((*owner, edge))
                if tag in ("vehicle", "trip", "flow", "route") and owner_stack:
                    owner_stack.pop()
                if not owner_stack:
                    element.clear()
        except ElementTree.ParseError as err:
            raise ScenarioError(f"scenario {scenario.name!r}: {path} is not valid XML: {err}") from None
        departures += departing
        if unknown:
            tag, owner_id, edge = unknown[0]
            more = f" (and {len(unknown) - 1} more unknown edges)" if len(unknown) > 1 else ""
            raise ScenarioError(
                f"scenario {scenario.name!r}: {path}: {tag} {owner_id!r} uses edge {edge!r}, which is not in the network {Path(scenario.net_file).name}{more}"
            )
    if departures == 0:  # nothing would ever drive: every metric would be 0, delay a perfect 0.0
        files = ", ".join(str(path) for path in scenario.route_files)
        raise ScenarioError(f"scenario {scenario.name!r}: the route file(s) {files} hold no vehicle, trip or flow")


def actuated_programs(scenario: Scenario, min_green: float, max_green: float) -> Path | None:
    """An additional file with a SUMO ``actuated`` program per light whose network has only static
    ones: the same phases, each green given ``minDur=min_green`` and ``maxDur=max_green`` (SUMO's
    gap-based actuation, detectors built by SUMO); ``None`` when every light has an actuated program.
    Cached by the network file's path and version and the two durations."""
    _, programs = net_contents(scenario.net_file)
    if all("actuated" in types for types in programs.values()):
        return None
    net_file = Path(scenario.net_file).resolve()
    key = json.dumps([str(net_file), net_file.stat().st_mtime, min_green, max_green])
    out = (
        _cache_root()
        / "actuated"
        / f"{net_file.name.split('.')[0]}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.add.xml"
    )
    if out.is_file():
        return out
    additional, seen = ElementTree.Element("additional"), set()
    for logic in ElementTree.parse(net_file).getroot().iter("tlLogic"):
        light_id = logic.attrib["id"]
        if light_id in seen or "actuated" in programs.get(light_id, ()):
            continue
        seen.add(light_id)
        program = ElementTree.SubElement(
            additional, "tlLogic", id=light_id, type="actuated", programID="ctrlgym-actuated", offset="0"
        )
        for phase in logic.iter("phase"):
            state = phase.attrib["state"]
            attributes = {"duration": phase.attrib["duration"], "state": state}
            if is_green_phase(state):
                attributes.update(minDur=f"{min_green:g}", maxDur=f"{max_green:g}")
            ElementTree.SubElement(program, "phase", attributes)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}")
    ElementTree.ElementTree(additional).write(partial)
    os.replace(partial, out)
    return out


def _cache_root() -> Path:
    return Path(os.environ.get("CTRLGYM_CACHE", Path.home() / ".cache" / "ctrlgym")) / "scenarios"


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ScenarioError(
            f"{Path(command[0]).name} failed ({' '.join(command[1:6])} ...): {result.stderr.strip()[-500:]}"
        )


def _fixed_time_programs(net_file: Path, out_file: Path) -> None:
    """An additional file with a static ``fixed`` program per light, copied from its program ``0``.

    Built-in networks carry actuated programs (SUMO builds their detectors when it loads the
    network); the fixed-time baseline switches to this static copy with the same phases.
    """
    net = ElementTree.parse(net_file).getroot()
    additional = ElementTree.Element("additional")
    for logic in net.iter("tlLogic"):
        program = ElementTree.SubElement(
            additional, "tlLogic", id=logic.attrib["id"], type="static", programID="fixed", offset="0"
        )
        for phase in logic.iter("phase"):
            ElementTree.SubElement(program, "phase", duration=phase.attrib["duration"], state=phase.attrib["state"])
    ElementTree.ElementTree(additional).write(out_file)


def make_scenario(
    kind: str = "grid",
    *,
    rows: int = 4,
    cols: int = 4,
    length: float = 150.0,
    lanes: int = 1,
    demand: float = 1200.0,
    duration: int = 3600,
    seed: int = 0,
    tls_type: str = "actuated",
) -> Scenario:
    """Build (or fetch from the cache) a seeded scenario.

    ``kind``: ``"single"`` (one 4-arm intersection), ``"arterial"`` (1 x ``cols``) or ``"grid"``
    (``rows`` x ``cols``, default 4x4). ``demand`` is the network's inflow in vehicles per hour,
    spread over random fringe-to-fringe trips (``randomTrips.py --fringe-factor``), routed by
    ``duarouter``. ``length`` is the block length in metres, ``lanes`` the lanes per direction.
    ``tls_type`` is the type of the network's own programs: ``"actuated"`` (default; a static
    copy is added for the fixed-time baseline) or ``"static"`` (what sumo-rl needs: it hangs on
    actuated programs).
    """
    if tls_type not in ("actuated", "static"):
        raise ScenarioError(f"scenario {kind}: tls_type must be 'actuated' or 'static', got {tls_type!r}")
    if kind not in SCENARIO_KINDS:
        raise ScenarioError(f"unknown scenario kind {kind!r}; choose one of {SCENARIO_KINDS}")
    if kind == "single":
        rows, cols = 1, 1
    elif kind == "arterial":
        rows = 1
    for label, value in (("rows", rows), ("cols", cols), ("lanes", lanes)):
        if int(value) < 1:
            raise ScenarioError(f"scenario {kind}: {label} must be >= 1, got {value}")
    if demand <= 0 or duration <= 0 or length <= 10:
        raise ScenarioError(f"scenario {kind}: demand, duration must be > 0 and length > 10 m")
    params = {
        "kind": kind,
        "rows": rows,
        "cols": cols,
        "length": length,
        "lanes": lanes,
        "demand": demand,
        "duration": duration,
        "seed": seed,
    }
    if tls_type != "actuated":  # keeps the cache keys of actuated scenarios
        params["tls_type"] = tls_type
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{kind}{rows}x{cols}" if kind != "single" else "single"
    folder = _cache_root() / f"{name}-{digest}"
    net, routes, fixed = folder / "net.net.xml", folder / "routes.rou.xml", folder / "fixed_time.add.xml"
    if not routes.is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
        try:
            _run(
                [
                    sumo_binary("netgenerate"),
                    "--grid",
                    f"--grid.x-number={cols}",
                    f"--grid.y-number={rows}",
                    f"--grid.length={length}",
                    f"--grid.attach-length={length}",
                    f"--default.lanenumber={lanes}",
                    "--default-junction-type=traffic_light",
                    f"--tls.default-type={tls_type}",
                    "--no-turnarounds=true",
                    f"--seed={seed}",
                    "-o",
                    "net.net.xml",
                ],
                work,
            )
            _run(
                [
                    sys.executable,
                    str(sumo_home() / "tools" / "randomTrips.py"),
                    "-n",
                    "net.net.xml",
                    "-o",
                    "trips.trips.xml",
                    "-r",
                    "routes.rou.xml",
                    "--begin",
                    "0",
                    "--end",
                    str(duration),
                    "--period",
                    f"{3600.0 / demand:.6f}",
                    "--fringe-factor",
                    "1000",
                    "--min-distance",
                    str(length),
                    "--seed",
                    str(seed),
                    "--validate",
                    "--prefix",
                    "veh",
                ],
                work,
            )
            _fixed_time_programs(work / "net.net.xml", work / "fixed_time.add.xml")
            (work / "scenario.json").write_text(json.dumps(params, indent=1))
            if folder.exists():  # another process finished first
                shutil.rmtree(work)
            else:
                os.replace(work, folder)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return Scenario(name, net, (routes,), (fixed,), duration=duration, extra=params)


def resolve_scenario(
    owner: str,
    scenario: str | Scenario = "grid",
    *,
    rows: int = 4,
    cols: int = 4,
    demand: float = 1200.0,
    lanes: int = 1,
    route_seed: int = 0,
    tls_type: str = "actuated",
    net_file: str | Path | None = None,
    route_file: str | Path | Sequence[str | Path] | None = None,
    sumocfg: str | Path | None = None,
    num_seconds: int | None = None,
) -> Scenario:
    """The scenario a traffic env's arguments name: ``sumocfg``, else ``net_file`` + ``route_file``,
    else a :class:`Scenario`, else ``"resco:<map>"``, else a built-in kind (errors name ``owner``)."""
    if sumocfg is not None:
        others = [name for name, given in (("net_file", net_file), ("route_file", route_file)) if given is not None]
        chosen = ([f"scenario={scenario!r}"] if scenario != "grid" else []) + others  # "grid": the default
        if chosen:
            raise ScenarioError(f"{owner}: sumocfg= names the whole scenario; drop {', '.join(chosen)}")
        return Scenario.from_sumocfg(sumocfg)
    if net_file is not None:
        if route_file is None:
            raise ValueError(f"{owner}: net_file needs a route_file")
        return Scenario.from_files(net_file, route_file, duration=num_seconds or 3600)
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str) and scenario.startswith("resco:"):
        return resco_scenario(scenario.removeprefix("resco:"))
    if scenario not in SCENARIO_KINDS:
        raise ScenarioError(
            f"{owner}: unknown scenario {scenario!r}; choose one of {SCENARIO_KINDS}, 'resco:<map>' with a map of {RESCO_MAPS}, or pass sumocfg= / net_file="
        )
    return make_scenario(
        scenario,
        rows=rows,
        cols=cols,
        demand=demand,
        lanes=lanes,
        duration=num_seconds or 3600,
        seed=route_seed,
        tls_type=tls_type,
    )
