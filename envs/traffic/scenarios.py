"""Traffic scenarios: SUMO networks and routes, generated with SUMO's own tools or given as files.

Built-in scenarios (``single``, ``arterial``, ``grid``) are made at first use with ``netgenerate``
and ``tools/randomTrips.py`` from the ``eclipse-sumo`` wheel, seeded, and cached under
``$CTRLGYM_CACHE`` (default ``~/.cache/ctrlgym``) by their parameters. Any user network works
too: ``Scenario.from_files("my.net.xml", "my.rou.xml")`` or ``Scenario.from_sumocfg(...)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Scenario", "ScenarioError", "make_scenario", "resolve_scenario", "sumo_home", "sumo_binary", "SCENARIO_KINDS"]

SCENARIO_KINDS = ("single", "arterial", "grid")


class ScenarioError(ValueError):
    """A scenario that cannot be built or read; the message names the file or parameter."""


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
    """A SUMO network with its demand: what a traffic env simulates."""

    name: str
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...] = ()
    duration: int = 3600  # seconds of demand in the route files
    extra: dict = field(default_factory=dict, compare=False)

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

    @classmethod
    def from_files(cls, net_file: str | Path, route_files: str | Path | list, name: str | None = None, duration: int = 3600) -> Scenario:
        """A user network and route file(s)."""
        routes = [route_files] if isinstance(route_files, (str, Path)) else list(route_files)
        return cls(name or Path(net_file).name.split(".")[0], Path(net_file), tuple(Path(r) for r in routes), duration=duration)

    @classmethod
    def from_sumocfg(cls, config_file: str | Path, name: str | None = None) -> Scenario:
        """The network and routes named in a ``.sumocfg`` file."""
        config_file = Path(config_file)
        if not config_file.is_file():
            raise ScenarioError(f"sumocfg file not found: {config_file}")
        root = ElementTree.parse(config_file).getroot()

        def values(tag: str) -> list[Path]:
            element = root.find(f".//{tag}")
            if element is None:
                return []
            return [config_file.parent / v.strip() for v in element.get("value", "").split(",") if v.strip()]

        nets = values("net-file")
        if not nets:
            raise ScenarioError(f"{config_file}: no <net-file> in the configuration")
        end = root.find(".//end")
        duration = int(float(end.get("value"))) if end is not None else 3600
        return cls(name or config_file.name.split(".")[0], nets[0], tuple(values("route-files")), tuple(values("additional-files")), duration)


def _cache_root() -> Path:
    return Path(os.environ.get("CTRLGYM_CACHE", Path.home() / ".cache" / "ctrlgym")) / "scenarios"


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ScenarioError(f"{Path(command[0]).name} failed ({' '.join(command[1:6])} ...): {result.stderr.strip()[-500:]}")


def _fixed_time_programs(net_file: Path, out_file: Path) -> None:
    """An additional file with a static ``fixed`` program per light, copied from its program ``0``.

    Built-in networks carry actuated programs (SUMO builds their detectors when it loads the
    network); the fixed-time baseline switches to this static copy with the same phases.
    """
    net = ElementTree.parse(net_file).getroot()
    additional = ElementTree.Element("additional")
    for logic in net.iter("tlLogic"):
        program = ElementTree.SubElement(additional, "tlLogic", id=logic.get("id"), type="static", programID="fixed", offset="0")
        for phase in logic.iter("phase"):
            ElementTree.SubElement(program, "phase", duration=phase.get("duration"), state=phase.get("state"))
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
    params = {"kind": kind, "rows": rows, "cols": cols, "length": length, "lanes": lanes, "demand": demand, "duration": duration, "seed": seed}
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
                    sumo_binary("netgenerate"), "--grid", f"--grid.x-number={cols}", f"--grid.y-number={rows}",
                    f"--grid.length={length}", f"--grid.attach-length={length}", f"--default.lanenumber={lanes}",
                    "--default-junction-type=traffic_light", f"--tls.default-type={tls_type}", "--no-turnarounds=true",
                    f"--seed={seed}", "-o", "net.net.xml",
                ],
                work,
            )  # fmt: skip
            _run(
                [
                    sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", "net.net.xml",
                    "-o", "trips.trips.xml", "-r", "routes.rou.xml", "--begin", "0", "--end", str(duration),
                    "--period", f"{3600.0 / demand:.6f}", "--fringe-factor", "1000", "--min-distance", str(length),
                    "--seed", str(seed), "--validate", "--prefix", "veh",
                ],
                work,
            )  # fmt: skip
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
    route_file: str | Path | list | tuple | None = None,
    sumocfg: str | Path | None = None,
    num_seconds: int = 3600,
) -> Scenario:
    """The scenario a traffic env's arguments name: ``sumocfg``, else ``net_file`` + ``route_file``,
    else a :class:`Scenario`, else a built-in kind (errors name ``owner``)."""
    if sumocfg is not None:
        return Scenario.from_sumocfg(sumocfg)
    if net_file is not None:
        if route_file is None:
            raise ValueError(f"{owner}: net_file needs a route_file")
        return Scenario.from_files(net_file, route_file, duration=num_seconds)
    if isinstance(scenario, Scenario):
        return scenario
    return make_scenario(scenario, rows=rows, cols=cols, demand=demand, lanes=lanes, duration=num_seconds, seed=route_seed, tls_type=tls_type)
