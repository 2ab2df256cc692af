"""Generate the docs' reference and results pages, and the README's generated sections.

    python docs/generate.py            # the pages (docs/environments, agents, reference, results; gitignored)
    python docs/generate.py --readme   # also rewrite the README's generated sections
    python docs/generate.py --check    # exit 1 if the README's generated sections are stale (a test runs this)

Everything here is read from the code and from JSON in the repository: env pages from the class
docstrings and the registry, hyperparameter tables from the ``Args:`` sections
(:func:`ctrlgym.docstrings.parameter_docs`), the config schema from the pydantic models, results
from ``benchmarks/results/*.json`` and the stored report JSON under ``benchmarks/results/reports/``.
No result figure is typed by hand.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"
FAMILIES = {
    "fastslow": "Fast-slow MDPs",
    "traffic": "Traffic signals",
    "mixup": "Mix-up policy selection",
    "beamforming": "Beamforming",
}
FAMILY_GUIDES = {
    "fastslow": "../families/fastslow.md",
    "traffic": "../families/traffic.md",
    "mixup": "../families/mixup.md",
    "beamforming": "../families/beamforming.md",
}


# ---------------------------------------------------------------------------------------- text
def rst_to_md(text: str) -> str:
    """The reStructuredText of a docstring as Markdown: links, roles and double backticks."""
    text = re.sub(r"`([^`<]+?)\s*<([^>]+)>`_", r"[\1](\2)", text)
    text = re.sub(r":(?:math|meth|func|class|mod|attr|data|obj|exc):`~?\.?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def docstring_md(doc: str | None, shift: int = 0) -> str:
    """A docstring as Markdown: headings moved ``shift`` levels down, doctest examples fenced."""
    lines = rst_to_md(inspect.cleandoc(doc or "")).splitlines()
    out: list[str] = []
    in_example = False
    for line in lines:
        if line.startswith(">>>") and not in_example:
            out += ["```pycon"]
            in_example = True
        elif in_example and not line.strip():
            out += ["```"]
            in_example = False
        if line.startswith("#") and not in_example:
            line = "#" * shift + line
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out).strip() + "\n"


def table(header: list[str], rows: list[list[Any]]) -> str:
    cell = lambda value: str(value).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value != value:  # NaN
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    magnitude = abs(value)
    return f"{value:,.0f}" if magnitude >= 1000 else f"{value:.3g}" if magnitude >= 0.01 else f"{value:.2e}"


# ---------------------------------------------------------------------------------------- environments
def env_table_rows() -> list[list[str]]:
    from ctrlgym.registry import registered_envs

    return [
        [
            f"`{entry.env_id}`",
            FAMILIES.get(entry.family, entry.family),
            entry.summary,
            f"`{entry.extra}`" if entry.extra else "-",
        ]
        for entry in sorted(
            registered_envs(), key=lambda e: (list(FAMILIES).index(e.family) if e.family in FAMILIES else 99, e.env_id)
        )
    ]


def env_pages() -> None:
    from ctrlgym.registry import registered_envs

    entries = registered_envs()
    index = [
        "# Environments\n",
        "Every registered environment, its family and the extra that installs what it needs. Each is a batch "
        "(`ctrlgym.TorchVectorEnv`, a `gymnasium.vector.VectorEnv`); `gymnasium.make` of a single-agent id "
        "gives one copy. Generated from the registry and the class docstrings.\n",
        table(["id", "family", "what it is", "extra"], env_table_rows()),
        "\nTraffic also has a page per RESCO benchmark map: [RESCO maps](resco/index.md).\n",
    ]
    write(DOCS / "environments" / "index.md", "\n".join(index))
    for family, title in FAMILIES.items():
        # the main env of a family first, its single-agent and twin variants after
        members = sorted(
            (e for e in entries if e.family == family),
            key=lambda e: ("Single" in e.env_id, "Twin" in e.env_id, e.env_id),
        )
        page = [
            f"# {title}\n",
            f"How the family works, with examples: [the {title.lower()} guide]({FAMILY_GUIDES[family]}).\n",
        ]
        for entry in members:
            cls = entry.vector_cls
            name = entry.env_id.split("/")[-1].rsplit("-v", 1)[0]
            page += [
                f"## {name}\n",
                f"`{entry.env_id}` · `{cls.__module__}.{cls.__qualname__}` · {entry.summary}\n",
                docstring_md(cls.__doc__, shift=1),
            ]
            baselines = entry.baselines
            if baselines:
                page += [
                    "### Baselines\n",
                    "Named in `evaluation.baselines` of a config; `ctrlgym evaluate` runs each on the same seeds as the agent.\n",
                    table(["name", "what it does"], [[f"`{n}`", b.description or "-"] for n, b in baselines.items()]),
                ]
        write(DOCS / "environments" / f"{family}.md", "\n".join(page))


def resco_map_pages() -> None:
    """A page per RESCO map: its window, timing, lights and greens, demand and a drawing of the net."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sumolib

    from ctrlgym.envs.traffic import RESCO_MAPS, SignalNetwork, resco_scenario
    from ctrlgym.envs.traffic.simulation import scheduled_departures

    folder = DOCS / "environments" / "resco"
    rows = []
    for name in RESCO_MAPS:
        scenario = resco_scenario(name)
        network = SignalNetwork(scenario.net_file)
        wider = SignalNetwork(scenario.net_file, neighbour_reach_m=400)
        demand = _route_elements(scenario.route_files)
        net = sumolib.net.readNet(str(scenario.net_file), withPrograms=True)
        drawing = folder / f"{name}.png"
        _draw_network(plt, net, network, drawing, wider)
        if name == "grid4x4":  # the README's picture (committed, so it shows where the README is read)
            _draw_network(plt, net, network, DOCS / "assets" / "grid4x4.png")
        defaults = scenario.defaults
        rows.append(
            [
                f"[{name}]({name}.md)",
                network.num_agents,
                f"{scenario.begin:g}–{scenario.end:g} s",
                f"{defaults['delta_time']} s / {defaults['yellow_time']} s",
                demand.get("vehicle", 0) + demand.get("trip", 0),
            ]
        )
        lights = [
            [
                f"`{light.id if len(light.id) <= 32 else light.id[:29] + '…'}`",
                light.num_greens,
                len(light.incoming_lanes),
                int(network.adjacency[k].sum()),
                int(wider.adjacency[k].sum()),
                ", ".join(f"`{state}`" for state in light.green_states),
            ]
            for k, light in enumerate(network.lights)
        ]
        restored = (
            "\n**Restored phase.** sumo-rl's copy of this net comments out signal phases that RESCO's original has; "
            "ctrlgym runs a copy with them restored (`restore_commented_phases`), so the programs below are RESCO's.\n"
            if scenario.sumocfg and "restored" in str(scenario.sumocfg)
            else ""
        )
        scheduled = scheduled_departures(scenario.route_files)
        page = [
            f"# RESCO map: {name}\n",
            f'`TrafficSignalEnv(scenario="resco:{name}")` (or `TrafficTwinEnv`). One of the eight maps of RESCO '
            "(Ault & Sharon, NeurIPS 2021 Datasets and Benchmarks), read from the `sumo-rl` package "
            '(`pip install "ctrlgym[benchmarks]"`).\n',
            f"![{name}]({name}.png)\n",
            "Roads in grey, traffic lights in red; a solid line joins lights whose roads meet directly, a dashed one "
            "lights within 400 m of road through unsignalled junctions (`neighbour_reach=400`).\n",
            "## As RESCO runs it\n",
            table(
                ["setting", "value"],
                [
                    ["episode window (SUMO time)", f"{scenario.begin:g} to {scenario.end:g} s ({scenario.duration} s)"],
                    ["decision interval / yellow", f"{defaults['delta_time']} s / {defaults['yellow_time']} s"],
                    [
                        "teleports",
                        "off (`time_to_teleport=-1`)" if defaults.get("time_to_teleport") == -1 else "SUMO's",
                    ],
                    ["route files", ", ".join(f"`{Path(r).name}`" for r in scenario.route_files)],
                    [
                        "demand",
                        ", ".join(f"{count:,} `<{tag}>`" for tag, count in sorted(demand.items()))
                        + (f" ({len(scheduled):,} `<vehicle>`s with a fixed departure)" if scheduled else ""),
                    ],
                ],
            ),
            restored,
            "## Lights\n",
            "Each light's green phases are its agent's actions (in this order); neighbours are lights whose roads meet "
            "directly, and within 400 m of road through unsignalled junctions (`neighbour_reach=400`).\n",
            table(["light", "greens", "incoming lanes", "neighbours", "within 400 m", "green states"], lights),
        ]
        write(folder / f"{name}.md", "\n".join(page))
    index = [
        "# RESCO maps\n",
        "RESCO's eight benchmark maps, each with the settings RESCO runs it with (`resco:<map>` defaults). "
        "Baselines and results on them: [traffic results](../../results/traffic.md).\n",
        table(["map", "lights", "episode", "decision / yellow", "vehicles and trips"], rows),
    ]
    write(folder / "index.md", "\n".join(index))


def _route_elements(route_files) -> dict[str, int]:
    import xml.etree.ElementTree as ElementTree

    counts: dict[str, int] = {}
    for path in route_files:
        for _, element in ElementTree.iterparse(path):
            if element.tag in ("vehicle", "trip", "flow", "person"):
                counts[element.tag] = counts.get(element.tag, 0) + 1
                element.clear()
    return counts


def _draw_network(plt, net, network, path: Path, wider=None) -> None:
    figure, axis = plt.subplots(figsize=(6, 6))
    for edge in net.getEdges():
        xs, ys = zip(*edge.getShape(), strict=True)
        axis.plot(xs, ys, color="0.7", lw=0.8)
    centres = []
    for light in network.lights:
        nodes = {net.getLane(lane).getEdge().getToNode() for lane in light.incoming_lanes}
        x = sum(n.getCoord()[0] for n in nodes) / len(nodes)
        y = sum(n.getCoord()[1] for n in nodes) / len(nodes)
        centres.append((x, y))
    for i in range(network.num_agents):
        for j in range(i + 1, network.num_agents):
            if network.adjacency[i, j]:
                axis.plot(*zip(centres[i], centres[j], strict=True), color="tab:red", lw=1.5, alpha=0.5)
            elif wider is not None and wider.adjacency[i, j]:
                axis.plot(*zip(centres[i], centres[j], strict=True), color="tab:red", lw=1.0, ls="--", alpha=0.5)
    axis.scatter(*zip(*centres, strict=True), color="tab:red", s=30, zorder=3)
    axis.set_aspect("equal")
    axis.axis("off")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


# ---------------------------------------------------------------------------------------- agents
def agent_pages() -> None:
    from ctrlgym.docstrings import parameter_docs
    from ctrlgym.experiment.algorithms import registered_algorithms

    algorithms = list(registered_algorithms().values())
    page = [
        "# Agents\n",
        "Every algorithm a config can name in `agent.algo`. Stable-Baselines3's are trained through the SB3 adapter "
        "(their hyperparameters are SB3's, documented there); ctrlgym's own follow the `ctrlgym.policies.Agent` "
        "protocol, and their hyperparameters (`agent.hyperparameters`) are listed below, generated from the code.\n",
        table(
            ["`agent.algo`", "what it is", "class"],
            [[f"`{a.name}`", a.description, f"`{a.entry_point}`"] for a in algorithms],
        ),
    ]
    for algorithm in algorithms:
        cls = algorithm.load()
        page.append(f"## `{algorithm.name}`\n")
        if algorithm.sb3:
            page.append(
                f"Stable-Baselines3's `{cls.__name__}`: every keyword of its constructor is a hyperparameter "
                f"(see SB3's documentation of [{cls.__name__}](https://stable-baselines3.readthedocs.io/en/master/modules/{cls.__name__.lower()}.html)).\n"
            )
            continue
        summary = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]
        page.append(rst_to_md(summary) + "\n")
        described = parameter_docs(cls)
        rows, seen = [], set()
        for base in cls.__mro__:  # a subclass passing **kwargs on takes its bases' keywords too
            if "__init__" not in base.__dict__ or base is object:
                continue
            parameters = inspect.signature(base.__dict__["__init__"]).parameters.values()
            for parameter in parameters:
                if parameter.name in ("self", "env", *seen) or parameter.kind in (
                    parameter.VAR_KEYWORD,
                    parameter.VAR_POSITIONAL,
                ):
                    continue
                seen.add(parameter.name)
                default = "required" if parameter.default is parameter.empty else f"`{parameter.default!r}`"
                rows.append([f"`{parameter.name}`", default, rst_to_md(described.get(parameter.name, "-"))])
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                break
        if rows:
            page += ["Hyperparameters (`agent.hyperparameters`):\n", table(["name", "default", "meaning"], rows)]
    write(DOCS / "agents" / "index.md", "\n".join(page))

    import ctrlgym.solvers as solvers

    rows = []
    for name in solvers.__all__:
        member = getattr(solvers, name)
        summary = inspect.cleandoc(member.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        rows.append([f"`{name}`", rst_to_md(summary)])
    solver_page = [
        "# Solvers\n",
        "Exact dynamic programming on a finite MDP (sparse CSR tensors, batched in torch) and the frozen-state "
        "approximate DP of the fast-slow family. Signatures: [API reference](../api.md#solvers).\n",
        table(["function", "what it does"], rows),
    ]
    write(DOCS / "agents" / "solvers.md", "\n".join(solver_page))


# ---------------------------------------------------------------------------------------- config schema
def config_reference() -> None:
    from ctrlgym.experiment import config

    models = [
        ("top level", config.ExperimentConfig),
        ("env", config.EnvConfig),
        ("agent", config.AgentConfig),
        ("evaluation", config.EvaluationConfig),
        ("solve", config.SolveConfig),
        ("tune", config.TuneConfig),
        ("tune.space.<name>", config.SearchDimension),
    ]
    page = [
        "# Config schema\n",
        "Every key of an experiment config (YAML), generated from the pydantic models in "
        "`ctrlgym.experiment.config`. An unknown key or a bad value is one error line naming the file and the key. "
        "`ctrlgym configs show NAME` prints a shipped config; `--set KEY.PATH=VALUE` overrides one value.\n",
    ]
    for section, model in models:
        rows = []
        for key, info in model.model_fields.items():
            annotation = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
            if info.is_required():
                default = "required"
            elif info.default_factory is not None:
                default = (
                    f"`{info.default_factory()!r}`"
                    if section != "top level" or key == "seeds"
                    else "(section defaults)"
                )
            else:
                default = f"`{info.default!r}`"
            rows.append([f"`{key}`", f"`{annotation}`", default, info.description or "-"])
        page += [f"## {section}\n", table(["key", "type", "default", "meaning"], rows)]
    write(DOCS / "reference" / "config.md", "\n".join(page))


# ---------------------------------------------------------------------------------------- results
#: every results JSON: (page, title, the command that regenerates it, what it measures)
BENCHMARKS = {
    "bench_vector.json": (
        "speed",
        "Native batch against a hand-vectorised numpy batch and Gymnasium's SyncVectorEnv",
        "make bench",
        "Env steps per second of each fast-slow family, eager and `compile=True` (DynamicPricing has no "
        "compiled step), quiet and beside a busy process; `ctrlgym / numpy_batch` below 1 means the numpy "
        "batch (benchmarks/numpy_peers.py: the same dynamics, time limit, autoreset and episode statistics) "
        "is faster; medians over rounds with their range.",
    ),
    "bench_contention.json": (
        "speed",
        "Throughput quiet and beside a busy process",
        "make bench-contention",
        "Each family's throughput with ctrlgym's thread policy and with torch's default threads; `kept` is busy / quiet.",
    ),
    "bench_snippets.json": (
        "speed",
        "The README's SB3 example, quiet and busy",
        "python benchmarks/bench_snippets.py --timesteps 8192",
        "Wall seconds of the example under each thread setting.",
    ),
    "bench_snippets_torchrl_rllib.json": (
        "speed",
        "The TorchRL and RLlib examples, quiet and busy",
        "python benchmarks/bench_snippets.py --snippets torchrl,rllib",
        "Wall seconds of each example under each thread setting.",
    ),
    "bench_solvers.json": (
        "speed",
        "Exact DP solvers against quantecon and pymdptoolbox",
        "python benchmarks/bench_solvers.py",
        "Seconds to an ε-optimal policy and its regret, per solver, on the same MDPs.",
    ),
    "bench_scale.json": (
        "speed",
        "The largest twin batch and flat MDP that fit in memory",
        "make bench-scale",
        "Each size found from a small probe's peak memory per env (per state) and the budget (80% of the memory "
        "available at the start), then run in a process of its own: the twin (RESCO grid4x4, eager) for a few "
        "decision steps, modified policy iteration on a random MDP (5 actions, 20 next states, γ = 0.9) to ε = 1e-4.",
    ),
    "bench_solvers_flat.json": (
        "speed",
        "Exact DP on the same flat matrix against quantecon and mdpsolver",
        "python benchmarks/bench_solvers_flat.py",
        "Median seconds to an ε-optimal policy (ε = 1e-4) over rounds, with their range and each policy's regret, on "
        "random sparse MDPs (MDPSolver's recipe: 5 actions, 20 next states, γ = 0.9) and the queue's 119k-state "
        "matrix written out flat; quiet and beside a busy process; ctrlgym and mdpsolver at one thread and two.",
    ),
    "bench_solvers_flat_mdpsolver.json": (
        "speed",
        "Exact DP against mdpsolver at a million states",
        "python benchmarks/bench_solvers_flat.py --sizes 1000000 --no-queue --only ctrlgym mdpsolver --mdpsolver-max-states 1200000 "
        "--json benchmarks/results/bench_solvers_flat_mdpsolver.json",
        "The table above with mdpsolver at random S = 1M, where its input, Python lists of 100M probabilities and "
        "columns, takes about 8 GB (built once for its six contenders: one copy each ran out of 24 GB); ctrlgym and "
        "mdpsolver only (quantecon: table above).",
    ),
    "bench_solvers_flat_mdpsolver_queue.json": (
        "speed",
        "Exact DP against mdpsolver on the queue's flat matrix (one round)",
        "python benchmarks/bench_solvers_flat.py --sizes --no-busy --rounds 1 --only 'ctrlgym inexact_policy_iteration, 1' "
        "'mdpsolver vi, parallel' 'mdpsolver mpi, parallel' 'mdpsolver pi, parallel' --mdpsolver-max-states 1200000 "
        "--json benchmarks/results/bench_solvers_flat_mdpsolver_queue.json",
        "The queue's 119k states at γ = 0.99: ctrlgym's fastest solver there at one thread against mdpsolver's three "
        "solvers at its parallel setting (its fastest quiet); one round, quiet, as mdpsolver's solves take minutes.",
    ),
    "gpu/bench_twin.json": (
        "speed",
        "On a GPU (H200): the torch twin against SUMO alone and the numpy batch",
        "make gpu-check STEPS=twin",
        "benchmarks/bench_twin.py on CUDA at GPU sizes (benchmarks/gpu_check.sh; output of both runs in "
        "`benchmarks/results/gpu/gpu_check.log`). The GPU machine has no SUMO: SUMO alone is the stored CPU run "
        "(its row names the machine); the numpy peers ran on the GPU machine's CPU. The 1-s-step compiled row "
        "is missing: the step's time limit stopped it while compiling.",
    ),
    "gpu/bench_vector.json": (
        "speed",
        "On a GPU (H200): each fast-slow family's batch against its numpy batch",
        "make gpu-check STEPS=vector",
        "benchmarks/bench_vector.py on CUDA, one round each (a GPU machine is lent minutes): env steps per second, "
        "eager and compiled, against a hand-vectorised numpy batch on the same machine's CPU.",
    ),
    "gpu/bench_mixup.json": (
        "speed",
        "On a GPU (H200): the classifier population",
        "make gpu-check STEPS=mixup",
        "benchmarks/bench_mixup.py on CUDA: classifier SGD steps per second, stacked weights against "
        "torch.func.vmap and one classifier after another.",
    ),
    "bench_beamforming.json": (
        "speed",
        "Beamforming env against a numpy batch",
        "make bench-beamforming",
        "Env steps (cells × slots) per second, the torch env and a numpy batch of the same model interleaved "
        "in rounds, quiet and beside a busy process; medians with their range over rounds.",
    ),
    "bench_mixup.json": (
        "speed",
        "The classifier population: one batched forward/backward vs torch.func.vmap vs one by one",
        "make bench-mixup",
        "Classifier SGD steps per second.",
    ),
    "bench_sumo.json": (
        "traffic",
        "SUMO env step cost against sumo-rl and SUMO alone",
        "make bench-sumo",
        "Seconds per episode of each contender (median of the runs listed).",
    ),
    "bench_twin.json": (
        "traffic",
        "The torch twin against SUMO",
        "make bench-twin",
        "SUMO alone, the SUMO env, a hand-vectorised numpy batch of the twin's queue model (`benchmarks/numpy_twin.py`, "
        "tested step for step against the twin) and the twin (eager and `compile=True`) on the same 4x4 grid: signal "
        "decisions per second (lights × decisions) and simulated seconds per wall second over the batch, against SUMO "
        "alone and the numpy batch; then one env at 1-second steps against LightSim's published steps/s (cited: not "
        "installable here).",
    ),
    "calibrate_twin_resco.json": (
        "traffic",
        "Twin calibration on RESCO's maps",
        "make calibrate-twin",
        "Delay of each classic controller on SUMO and on the twin, per map.",
    ),
    "nash_coupling.json": (
        "traffic",
        "How much Nash DQN's neighbours move its choices",
        "python benchmarks/nash_coupling.py",
        "Per trained run: how often the equilibrium action differs from the agent's own best response.",
    ),
}
PAGES = {
    "speed": (
        "Speed",
        "Every figure is measured in one run against the peer named in its rows, with the provenance given.",
    ),
    "traffic": ("Traffic", "SUMO, the twin and the agents on RESCO's maps."),
    "fastslow": ("Fast-slow MDPs", "Exact DP, frozen-state DP and learned agents."),
    "mixup": ("Mix-up policy selection", "The agent against fixed mixes and schedules."),
    "beamforming": ("Beamforming", "Precoders and the channel predictor as the channel ages."),
}
#: what the earlier runs of each family found, in plain words (their figures come back with the stored
#: reports: each page names the command); stated once, here
FINDINGS = {
    "speed": [
        "On a CPU the eager torch batch of each fast-slow family is slower than a hand-written numpy "
        "batch of the same dynamics below about 16,000 envs: each step is dozens of small ops. Fused and "
        "compiled (`compile=True`) MultiClassQueue is about 1.7x the numpy batch at 1,024 envs and 2.7x "
        "at 16,384 (1.6x and 2.7x beside a busy process); at one env numpy stays about twice as fast. "
        "Compiled, RestlessBandit (2.3-3.1x) and EnergyStorage (1.2-2.0x) lead numpy from 1,024 envs, TaskGridworld is about 1.1x, "
        "and InventoryControl leads only at 16,384; DynamicPricing (Poisson sales, no compiled step) "
        "trails at 0.6-0.8x.",
        "At the largest sizes 24 GB holds on this machine, modified policy iteration solves a random MDP of "
        "7.2 million states (36 million state-actions, 17.6 GB at peak) in 164 s; the eager twin runs 131,072 "
        "envs of grid4x4 (11 GB) but at 1,300 env steps/s, per env 25x slower than at 4,096: at that size its "
        "temporaries are hundreds of MB per op, and a CPU batch is best kept to a few thousand envs per process.",
        "Exact DP on the same flat matrices, at one thread, is 2.3-2.5x quantecon's fastest solver quiet "
        "and 2.3-2.7x beside a busy process from 100k states up (random 100k: 2.29x quiet and busy, at least "
        "2.19x pairing the worst rounds; the queue's 119k: 2.5x; random 1M: 2.5-2.7x), 2.3x on 10k states "
        "quiet but 1.5x beside a busy process, and ahead of mdpsolver at every size: at 1M states (mdpsolver's "
        "Python-list input takes about 8 GB there) ctrlgym's value iteration at one thread takes 3.6 s against "
        "mdpsolver's 12.3 s at one thread (3.4x) and 7.0 s with its parallel solver (2.0x) quiet, 3.1x its best "
        "beside a busy process; on the queue's 119k states (γ = 0.99, one round) inexact PI's 2.2 s against "
        "mdpsolver's fastest 26.6 s (modified PI, parallel). A "
        "second thread adds 1.7-2x on an idle machine and loses beside a busy one. The queue's lead came from "
        "policy iteration's late steps, which change the action of a few states or none: their rows are patched "
        "instead of selected again (4.2 s to 2.3 s); value iteration returns its last backup's greedy policy "
        "(ε-optimal by MacQueen's bounds) instead of paying one backup more.",
        "On one H200 (2026-12-04, `make gpu-check`, torch 2.11 + CUDA 13): the compiled twin runs 759x SUMO alone "
        "at 4,096 envs, 5,376x at 65,536 and 6,264x at 524,288 (eager 227x / 1,846x / 1,999x, measured before its "
        "GPU sums became gathers); against the numpy "
        "batch on that machine's CPU 88x at 4,096. One env at 1-s steps on the GPU is launch-bound (eager 1,121 "
        "steps/s, 0.39x LightSim's published figure; the CPU's compiled twin is the one-env choice, 2.2-2.4x). "
        "Compiled MultiClassQueue is 0.84-0.92x numpy at 1,024 envs, 38-41x at 65,536 and 818-1,020x at 1,048,576 "
        "(one round in each of two runs, ranges over the runs); every fast-slow family leads its numpy batch "
        "24-133x eager and 108-477x compiled at 262,144 envs (one round); the mixup "
        "population trains 120k classifier steps/s (1.29x vmap). Beamforming (from the log, the JSON was cut "
        "by the step's limit): 0.02x numpy at one cell, 0.29x at 64, 5.9x at 1,024, 23x at 4,096 cells.",
        "The first GPU run found what no CPU test could: `index_add_` adds with atomics in no fixed order on CUDA, "
        "so the eager twin gave two trajectories from one seed (now summed by gathers on a GPU), and two host "
        "copies inside env steps (beamforming's noise power and mixup's Beta strength made into tensors each "
        "step; now fills). Still open: on CUDA the compiled twin leaves the eager one by one vehicle-fraction "
        "(0.008 of a lane's density, 1 of 1,408 observations, the same in both runs) within 25 steps, where on "
        "the CPU, also with the GPU's code paths forced, they are bit-identical. The transit ring has since grown "
        "by a step's seconds, so a step no longer reads rows it writes in place; whether that was the cause "
        "awaits the next GPU run.",
    ],
    "fastslow": [
        "Frozen-state DP is near-optimal on every fast-slow env, while omitting the slow state costs "
        "clearly more on all of them; on the models held by their factors exact DP is as fast as "
        "frozen-state DP, so the frozen-state saving shows on flat models.",
        "PPO gets close to the c-mu rule and the exact optimum on the queue in the demo's budget but "
        "does not reach them; the two are level there.",
    ],
    "mixup": [
        "On clean digits mixing costs accuracy (the classifier is not over-fitting), and plain training "
        "is as good as any schedule; PPO learns mostly to avoid mixing.",
        "With many wrong training labels every mix beats plain training by a wide margin; PPO learns to "
        "mix there but does not beat the best fixed operation (R-Mix's random saliency mix): their CIs overlap.",
    ],
    "beamforming": [
        "The CNN predictor trained on the rate loss closes most of the stale-to-perfect gap at low and "
        "medium speeds without being told the Doppler, but robust RZF on the genie Wiener prediction "
        "matches it within the CIs; trained on the MSE it learns nothing beyond the Wiener filter it "
        "starts from. Above 60 km/h the channel decorrelates within the CSI age and nothing recovers much.",
        "On the CPU the torch env is slightly ahead of a numpy batch of the same model from 1,024 cells "
        "(1.05-1.1x, quiet and busy) and behind it below (0.1x at one cell, 0.6x at 64): speed page.",
    ],
    "traffic": [
        "RESCO's MaxWave and MaxPressure starve the minor entries of ingolstadt7 and ingolstadt21 (they "
        "count only the vehicles near the stop line on the phase pair's lanes) and leave vehicles outside "
        "the network; RESCO's tripinfo formula (`delay_resco`) does not count vehicles that never "
        "entered on maps whose routes are `<trip>`s, so the published numbers there hide that backlog. "
        "ctrlgym's `delay` counts them.",
        "On grid4x4, Nash DQN's delay falls with its SUMO training budget — 68 s trained on the twin "
        "alone, 57 s after 2 simulated hours per SUMO process, 46 s after 8, 42 s after 16, 38 s after 32, "
        "36 s after 64 (CIs apart at each step, the gains shrinking) — past ctrlgym's max_wave (45 s) and "
        "max_pressure (40 s), but still behind RESCO's MaxWave (32 s) and RESCO's published IDQN (34 s). An 8x "
        "SUMO fine-tune gives the best IQM on ingolstadt1 (12.7 s against RESCO's MaxPressure's 13.1 s, CIs "
        "overlapping) and no gain on cologne1, cologne3 and cologne8, where Nash DQN stays level with RESCO's "
        "MaxWave within the CIs. Changing its reward from delay to queue length, or its observation "
        "to pressure, did not help. On arterial4x4 a longer SUMO fine-tune did not improve it (754 s "
        "against 719 s).",
        "The twin compiled (`compile=True`) runs one env at 1-second steps at 6,300-7,000 steps/s, 2.2-2.4x "
        "LightSim's published figure (a hand-vectorised numpy batch of the same queue model: 1.8-1.9x), quiet and busy. "
        "Batched on one CPU thread it simulates 45-47x faster than SUMO alone at 256 envs and 33-34x at 4,096 "
        "(quiet and busy; 24x and 21x before its sums became gathers inductor fuses, the transit ring stopped "
        "being copied each second, inductor stored its per-second shares instead of recomputing them and the "
        "observation moved into the compiled step), 2.3-2.5x the numpy batch; the eager twin is 0.73-0.87x numpy. "
        "Short of the 100x aimed for: a step of 256 envs takes 2.1-2.2 ms, of which its five simulated seconds "
        "are 1.2-1.3 ms and the rest (signals, readout, rewards and metrics in the graph; the arrival draws, "
        "0.26 ms; the Python around them) 0.85-0.9 ms, while 100x needs the whole step in 0.93-1.01 ms "
        "(SUMO alone at 13,789 or 12,630 simulated s/s in two runs) (`bench_twin.py --breakdown --sizes 256`). "
        "On both cores it reaches 64x quiet, but "
        "beside a busy process it collapses to 3-4x (inductor's OpenMP loops wait on the busy core), so the default "
        "stays one thread, as SUMO alone and every peer here run.",
    ],
}
#: stored report JSON (``ctrlgym report ... -o``), copied to benchmarks/results/reports/ by `make results`: page and command
REPORTS = {
    "traffic_benchmark": ("traffic", "make report-benchmark"),
    "resco_baselines": ("traffic", "make report-resco"),
    "traffic_nash_dqn": ("traffic", "make report-traffic"),
    "demo": ("fastslow", "make demo"),
    "mixup": ("mixup", "make report-mixup"),
    "beamforming": ("beamforming", "make report-beamforming"),
}


def _provenance(provenance: dict[str, Any]) -> str:
    parts = [f"commit `{provenance.get('commit', '?')}`", f"date {str(provenance.get('date', '?'))[:16]}"]
    parts.append(
        f"{provenance.get('cpu', '?')}, {provenance.get('cores', '?')} cores, device {provenance.get('device', '?')}"
    )
    threads = f"torch {provenance.get('torch', '?')}, {provenance.get('torch_threads', '?')} torch threads"
    if "ctrlgym_threads" in provenance:
        threads += f", {provenance['ctrlgym_threads']} in ctrlgym's env steps"
    parts.append(threads)
    if "load_average" in provenance:
        parts.append("load " + ", ".join(f"{x:.2f}" for x in provenance["load_average"]))
    return "Provenance: " + "; ".join(parts) + "."


def _is_leaf(value: Any) -> bool:
    """A value that fits in one cell: a scalar or a list of scalars."""
    return not isinstance(value, dict) and not (
        isinstance(value, list) and value and isinstance(value[0], (dict, list))
    )


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(number(v) for v in value)
    return "-" if value is None else number(value)


def results_tables(results: Any) -> list[str]:
    """Markdown tables of a benchmark's results, whatever their nesting: a list of rows becomes a
    table; a mapping of rows (each a mapping of cells) becomes a table with a row per key; deeper
    mappings become a titled section per key."""
    if isinstance(results, list):
        if results and all(isinstance(r, dict) for r in results):
            if any("rows" in r for r in results):  # e.g. the solvers: one MDP per entry, its rows inside
                out = []
                for entry in results:
                    label = ", ".join(f"{k} {_cell(v)}" for k, v in entry.items() if k != "rows")
                    out += [f"*{label}*\n", *results_tables(entry.get("rows", []))]
                return out
            columns = list(dict.fromkeys(k for r in results for k in r))
            if all(_is_leaf(r.get(c)) for r in results for c in columns):
                return [table(columns, [[_cell(r.get(c)) for c in columns] for r in results])]
        return [table(["value"], [[_cell(results)]])]
    if not isinstance(results, dict):
        return [table(["value"], [[_cell(results)]])]
    leaves = {k: v for k, v in results.items() if _is_leaf(v)}
    branches = {k: v for k, v in results.items() if not _is_leaf(v)}
    out = [table(["setting", "value"], [[k, _cell(v)] for k, v in leaves.items()])] if leaves else []
    rows = {k: v for k, v in branches.items() if isinstance(v, dict) and all(_is_leaf(x) for x in v.values())}
    if rows and len(rows) == len(branches):
        columns = list(dict.fromkeys(c for r in rows.values() for c in r))
        return out + [table(["", *columns], [[name, *(_cell(r.get(c)) for c in columns)] for name, r in rows.items()])]
    for key, value in branches.items():
        out += [f"*{key}*\n", *results_tables(value)]
    return out


def _report_blocks_md(blocks: list[list[Any]]) -> str:
    """A stored report's text blocks as Markdown, its headings moved one level down."""
    lines: list[str] = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * (int(kind[1]) + 1) + " " + content[0], ""]
        elif kind in ("p", "failed"):
            lines += [content[0], ""]
        elif kind == "table":
            lines += [table(*content)]
        elif kind == "list":
            lines += [*(f"- {item}" for item in content[0]), ""]
    return "\n".join(lines)


def results_pages() -> dict[Path, str]:
    """The results pages, ``{path: text}`` (committed: the README links them)."""
    pages: dict[str, list[str]] = {page: [] for page in PAGES}
    # the reports (the field's results) first, then the speed and calibration benchmarks
    for name, (page, command) in REPORTS.items():
        path = RESULTS / "reports" / f"{name}.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            pages[page] += [
                f"## Report: {name}\n",
                f"Regenerate: `{command}`, then `make results`.\n",
                _report_blocks_md(stored["blocks"]),
            ]
        else:
            pages[page].append(
                f"## Report: {name}\n\nNo stored report yet: `{command}` runs it and `make results` stores its JSON "
                f"(`benchmarks/results/reports/{name}.json`) and regenerates this page.\n"
            )
    for name, (page, title, command, meaning) in BENCHMARKS.items():
        path = RESULTS / name
        if not path.is_file():
            pages[page].append(f"## {title}\n\nNot measured yet: `{command}` writes `benchmarks/results/{name}`.\n")
            continue
        stored = json.loads(path.read_text())
        pages[page] += [
            f"## {title}\n",
            f"{meaning} Regenerate: `{command}` (writes `benchmarks/results/{name}`).\n",
            _provenance(stored.get("provenance", {})) + "\n",
            *results_tables(stored.get("results", {})),
        ]
    for page, findings in FINDINGS.items():
        pages[page].insert(0, "## Findings\n\n" + "\n".join(f"- {finding}" for finding in findings) + "\n")
    texts = {
        DOCS / "results" / f"{page}.md": f"# Results: {title}\n\n{intro}\n\n" + "\n".join(pages[page])
        for page, (title, intro) in PAGES.items()
    }
    rows = [[f"[{title}]({page}.md)", intro] for page, (title, intro) in PAGES.items()]
    texts[DOCS / "results" / "index.md"] = (
        "# Results\n\nGenerated from the JSON in `benchmarks/results/` (`make results`); each section names the command "
        "that reproduces it and the machine it ran on.\n\n" + table(["page", "what"], rows)
    )
    return {path: text.rstrip() + "\n" for path, text in texts.items()}


def readme_results() -> str:
    """The README's headline table: a few figures from the stored JSON, each linking to its page."""
    rows, commits = [], set()
    vector = RESULTS / "bench_vector.json"
    if vector.is_file():
        stored = json.loads(vector.read_text())
        commits.add(stored["provenance"].get("commit", "?"))
        quiet = [
            r
            for r in stored["results"]
            if r.get("machine") == "quiet" and r.get("family", "MultiClassQueue") == "MultiClassQueue"
        ]
        for name, label in (("ctrlgym", "eager"), ("ctrlgym compiled", "`compile=True`")):
            figure = ", ".join(f"{r[f'{name} / numpy_batch']:.2f}× at {number(r['num_envs'])} envs" for r in quiet)
            rows.append(
                [
                    f"MultiClassQueue on CPU, {label}: ctrlgym's batch / a hand-written numpy batch (median of rounds)",
                    figure,
                    "[speed](docs/results/speed.md)",
                ]
            )
    twin = RESULTS / "bench_twin.json"
    if twin.is_file():
        stored = json.loads(twin.read_text())
        commits.add(stored["provenance"].get("commit", "?"))
        quiet = [r for r in stored["results"] if r.get("machine", "quiet") == "quiet"]
        twins = [r for r in quiet if "vs_sumo_alone" in r and r["contender"].startswith("twin")]
        busy = {r["contender"]: r for r in stored["results"] if r.get("machine") == "busy" and "vs_sumo_alone" in r}

        def collapse(row: dict, key: str = "vs_sumo_alone") -> str:
            """Where a figure collapses beside a busy process, its busy figure too."""
            other = busy.get(row["contender"], {})
            return f", {other[key]:.2g}× busy" if other.get(key, row[key]) < 0.5 * row[key] else ""

        figure = ", ".join(
            f"{r['vs_sumo_alone']:.1f}× ({r['contender'].removeprefix('twin ')}{collapse(r)})" for r in twins
        )
        rows.append(
            [
                "Traffic twin on the 2-core CPU: simulated seconds per wall second against SUMO alone",
                figure,
                "[traffic](docs/results/traffic.md)",
            ]
        )
        against_numpy = [r for r in twins if "vs_numpy" in r]
        if against_numpy:
            figure = ", ".join(
                f"{r['vs_numpy']:.2f}× ({r['contender'].removeprefix('twin ')}{collapse(r, 'vs_numpy')})"
                for r in against_numpy
            )
            rows.append(
                [
                    "Traffic twin against a hand-vectorised numpy batch of its queue model",
                    figure,
                    "[traffic](docs/results/traffic.md)",
                ]
            )
        lightsim = [r for r in quiet if "vs_lightsim_published" in r]
        figure = ", ".join(
            f"{r['env_steps_per_second']:,.0f} steps/s = {r['vs_lightsim_published']:.2f}× "
            f"({'numpy batch' if r['contender'].startswith('numpy') else 'compiled' if 'compiled' in r['contender'] else 'eager'})"
            for r in lightsim
        )
        if lightsim:
            rows.append(
                [
                    "Traffic twin, one env at 1-s steps, against LightSim's published 2,894 steps/s",
                    figure,
                    "[traffic](docs/results/traffic.md)",
                ]
            )
    gpu_twin = RESULTS / "gpu" / "bench_twin.json"
    if gpu_twin.is_file():
        stored = json.loads(gpu_twin.read_text())
        commits.add(stored["provenance"].get("commit", "?"))
        compiled = [r for r in stored["results"] if r["contender"].startswith("twin compiled") and "vs_sumo_alone" in r]
        figure = ", ".join(f"{r['vs_sumo_alone']:,.0f}× at {r['contender'].split('N=')[1]} envs" for r in compiled)
        rows.append(
            [
                f"Traffic twin on one {stored['provenance'].get('device', 'GPU')}, `compile=True`, against SUMO alone "
                "(on a CPU core; quiet)",
                figure,
                "[speed](docs/results/speed.md)",
            ]
        )
    for name in ("traffic_benchmark", "resco_baselines"):
        report = RESULTS / "reports" / f"{name}.json"
        if not report.is_file():
            continue
        stored = json.loads(report.read_text())
        data = stored.get("data", {})
        for task, best in data.get("best", {}).items():
            rows.append(
                [
                    f"RESCO {task.split(':')[-1]}: lowest {data.get('metric', '')} (IQM)",
                    f"{best['policy']}, {best['iqm']:.1f} s (IQM of {best['seeds']} seeds)",
                    "[traffic](docs/results/traffic.md)",
                ]
            )
        written = next((b[1] for b in stored.get("blocks", []) if b[0] == "p" and "commit" in b[1]), "")
        found = re.search(r"commit (\S+?)\)", written)
        if found:
            commits.add(found.group(1))
        break
    if not rows:
        return "No stored results yet: see the docs' results pages.\n"
    note = f"\nBenchmark commits: {', '.join(sorted(commits))}.\n" if commits else ""
    if any(row[0].startswith("RESCO") for row in rows):
        note += (
            "The lowest IQM per map is not always a clear winner: the traffic page gives every policy's CI "
            "and says where they overlap.\n"
        )
    return table(["result", "figure", "page"], rows) + note


# ---------------------------------------------------------------------------------------- README
def readme_sections() -> dict[str, str]:
    return {
        "envs": table(["id", "family", "what it is", "extra"], env_table_rows()),
        "results": readme_results(),
    }


def render_readme(text: str) -> str:
    for name, body in readme_sections().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> section")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def link_tree() -> None:
    """``build/docs_src/ctrlgym``: the package as it is installed (envs/, agents/, solvers/ at their
    ``ctrlgym.`` names), for mkdocstrings, which reads the source tree."""
    package = ROOT / "build" / "docs_src" / "ctrlgym"
    package.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in (ROOT / "ctrlgym").iterdir() if p.name != "__pycache__"}
    wanted.update({name: ROOT / name for name in ("envs", "agents", "solvers", "configs")})
    for name, target in wanted.items():
        link = package / name
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="also rewrite the README's generated sections")
    parser.add_argument(
        "--check", action="store_true", help="only check the README's generated sections; exit 1 if stale"
    )
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    if args.check:
        stale = [readme] if render_readme(readme.read_text()) != readme.read_text() else []
        stale += [p for p, text in results_pages().items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)}: stale; run python docs/generate.py --readme", file=sys.stderr)
        return 1 if stale else 0
    link_tree()
    env_pages()
    resco_map_pages()
    agent_pages()
    config_reference()
    for path, text in results_pages().items():
        write(path, text)
    if args.readme:
        readme.write_text(render_readme(readme.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
