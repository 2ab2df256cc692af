"""The ``ctrlgym`` command: list, check, train, evaluate, report, demo."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ctrlgym.errors import CtrlgymError, UsageError

__all__ = ["main"]


def _list(args: argparse.Namespace) -> None:
    from ctrlgym.registry import registered_envs

    entries = registered_envs()
    width = max(len(entry.env_id) for entry in entries)
    for entry in entries:
        if not entry.available:
            print(
                f"{entry.env_id:<{width}}  [{entry.family}]  {entry.summary}  (needs pip install 'ctrlgym[{entry.extra}]')"
            )
            continue
        baselines = ", ".join(entry.baselines) or "-"
        print(f"{entry.env_id:<{width}}  [{entry.family}]  {entry.summary}  (baselines: {baselines})")


def _check(args: argparse.Namespace) -> None:
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from ctrlgym.checker import check_vector_env
    from ctrlgym.registry import get_entry, make_vector_env

    args.env_id = get_entry(args.env_id).env_id  # "MultiClassQueue-v0" -> "ctrlgym/MultiClassQueue-v0"
    for mode in ("next_step", "same_step", "disabled"):
        env = make_vector_env(args.env_id, args.num_envs, device=args.device, autoreset_mode=mode)
        try:
            check_vector_env(env)
        finally:
            env.close()
        print(f"check_vector_env  {mode:<9}  ok")
    if get_entry(args.env_id).vector_cls.multi_agent:
        print("single-env checkers: not applicable to a multi-agent env (see ctrlgym.adapters.pettingzoo)")
        return
    single = gym.make(args.env_id).unwrapped
    check_env(single, skip_render_check=True)
    print("gymnasium check_env         ok")
    sb3_check_env(single)
    print("stable-baselines3 check_env ok")


def _with_overrides(path: Path, overrides: list[str] | None) -> Any:
    """The config at ``path`` (a file, a shipped config's name, or a run directory's config.yaml) with the
    ``--set`` overrides applied; the path itself when there are none."""
    if not overrides:
        return path
    from ctrlgym.experiment.config import load_config

    return load_config(path / "config.yaml" if path.is_dir() else path, overrides)


def _set_flags(args: argparse.Namespace) -> str:
    return "".join(f" --set {override}" for override in args.set or [])


def _train(args: argparse.Namespace) -> None:
    from ctrlgym.experiment.training import train

    if args.executor == "ray":
        from ctrlgym.experiment.executors import ray_train

        if args.seeds is not None:
            raise UsageError("--seeds and --executor ray: Ray runs every seed of the config (each as its own task)")
        run_dir = ray_train(
            _with_overrides(args.config, args.set),
            address=args.address,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        print(f"run directory: {run_dir}")
        return
    run_dir = train(
        _with_overrides(args.config, args.set),
        resume=args.resume,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        seeds=args.seeds,
    )
    print(f"run directory: {run_dir}")


def _train_interrupted(args: argparse.Namespace) -> str:
    """Where each seed stands after Ctrl-C (its newest checkpoint) and the command that continues the run."""
    from ctrlgym.experiment.config import load_config
    from ctrlgym.experiment.runs import RunDir

    try:
        config = load_config(args.config, args.set)
        run = RunDir(Path(config.output_dir), config)
        seeds = args.seeds or config.seeds
        states = []
        for seed in seeds:
            found = run.latest_checkpoint(seed)
            done = config.agent is not None and run.final_model(seed).is_file()
            states.append(
                f"seed {seed} " + ("finished" if done else f"at step {found[0]:,}" if found else "not checkpointed yet")
            )
    except Exception:  # the interrupt came before the run directory existed
        return f"continue with: ctrlgym train {args.config}"
    seeds_flag = f" --seeds {','.join(map(str, args.seeds))}" if args.seeds else ""
    return f"{'; '.join(states)} (newest checkpoints). Continue with: ctrlgym train {args.config}{_set_flags(args)} --resume{seeds_flag}"


def _evaluate_interrupted(args: argparse.Namespace) -> str:
    return f"Finished jobs are kept; continue with: ctrlgym evaluate {args.run_dir}" + (
        f" --env {args.env}" if args.env else ""
    )


def _evaluate(args: argparse.Namespace) -> int:
    from ctrlgym.experiment.evaluation import evaluate_run

    if args.executor == "ray":
        from ctrlgym.experiment.executors import ray_evaluate

        if args.seeds is not None or args.policies is not None:
            raise UsageError(
                "--seeds/--policies and --executor ray: Ray runs every (policy, seed) job (each as its own task)"
            )
        evaluation = ray_evaluate(
            _with_overrides(args.run_dir, args.set),
            address=args.address,
            env_id=args.env,
            progress=not args.no_progress,
        )
    else:
        evaluation = evaluate_run(
            _with_overrides(args.run_dir, args.set),
            progress=not args.no_progress,
            env_id=args.env,
            seeds=args.seeds,
            policies=args.policies,
            overwrite=args.overwrite,
        )
    return _print_evaluation(evaluation)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _print_evaluation(evaluation: dict[str, Any]) -> int:
    """The report's numbers, on the console: each policy's IQM [95% CI] (of the env's headline metric over
    seeds, and of the return over seeds x episodes), "n too small" under 3 seeds, the report's verdict;
    1 if any job failed."""
    from ctrlgym.experiment.reports.run_report import (
        compare_policies,
        headline_summary,
        iqm_text,
        policy_verdict,
        verdict_text,
    )

    print(f"evaluated on {evaluation['env']}")
    rows = compare_policies(evaluation)
    headline = headline_summary(evaluation["env"], evaluation)
    by_policy = {row["policy"]: row for row in headline["rows"]} if headline else {}
    for row in rows:
        first = ""
        if headline and row["policy"] in by_policy:
            found = by_policy[row["policy"]]
            first = f"{headline['metric']} {iqm_text(found, found['seeds'])}, "
        print(
            f"{row['policy']:<16} {first}return {iqm_text(row, row['seeds'])} (IQM, {_count(row['seeds'], 'seed')} x {_count(row['episodes'], 'episode')})"
        )
    verdict = verdict_text(policy_verdict(rows))
    if verdict:
        print(verdict)
    failed = 0
    for policy, per_seed in evaluation["policies"].items():
        for seed, result in per_seed.items():
            if "failed" in result:
                failed += 1
                print(f"{policy:<16} FAILED on seed {seed}: {result['failed']}")
    return 1 if failed else 0


def _solve(args: argparse.Namespace) -> None:
    from ctrlgym.experiment.solving import solve_run

    if args.executor == "ray":
        from ctrlgym.experiment.executors import ray_solve

        results = ray_solve(_with_overrides(args.config, args.set), address=args.address, progress=not args.no_progress)
    else:
        results = solve_run(_with_overrides(args.config, args.set), progress=not args.no_progress)
    print(
        f"{results['model']}: {results['states']:,} states, {results['actions']} actions, γ={results['discount']}, ε={results['epsilon']}"
    )
    print(f"{'method':<28} {'T':>4} {'seconds':>9} {'x VI time':>10} {'regret %':>10}")
    for row in results["rows"]:
        fraction = f"{row['fraction_of_vi_time']:.2f}" if row["fraction_of_vi_time"] is not None else "-"
        period = row["period"] if row["period"] is not None else "-"
        regret = 0.0 if abs(row["regret_percent"]) < 5e-5 else row["regret_percent"]  # solver tolerance, either sign
        print(f"{row['method']:<28} {period:>4} {row['seconds']:>9.3f} {fraction:>10} {regret:>10.4f}")


def _report(args: argparse.Namespace) -> None:
    from ctrlgym.experiment.reports.run_report import write_report
    from ctrlgym.experiment.runs import RunDir

    run_dirs = [RunDir.resolve(path) for path in args.run_dirs]
    if args.output is None:  # one name per set of runs: a report never overwrites another run's
        names = sorted(dict.fromkeys(run.config.name for run in run_dirs))
        label = names[0] if len(names) == 1 else f"{names[0]}_and_{len(names) - 1}_more"
        args.output = Path("reports") / (f"benchmark_{label}" if args.benchmark else label)
    if args.benchmark:
        from ctrlgym.experiment.reports.benchmark import write_benchmark_report

        html_path, markdown_path = write_benchmark_report(
            run_dirs, args.output, across=args.across, reference=args.reference
        )
    else:
        html_path, markdown_path = write_report(run_dirs, args.output)
    print(f"report: {html_path.resolve()}\nmarkdown: {markdown_path.resolve()}")


def _demo(args: argparse.Namespace) -> None:
    from ctrlgym.experiment.config import ExperimentConfig
    from ctrlgym.experiment.evaluation import evaluate_run
    from ctrlgym.experiment.reports.run_report import write_report
    from ctrlgym.experiment.training import train

    config = ExperimentConfig(name="demo_ppo_multiclass_queue", output_dir=str(args.output_dir))
    if args.timesteps:
        config.trained_agent.total_timesteps = args.timesteps
    resume = (Path(args.output_dir) / "config.yaml").is_file()
    baselines = ", ".join(config.baseline_names)
    print(f"demo: PPO vs {baselines} on {config.env.id}, seeds {config.seeds}")
    run_dir = train(config, resume=resume, progress=not args.no_progress)
    evaluate_run(run_dir, progress=not args.no_progress)
    html_path, _ = write_report([run_dir], Path(args.output_dir) / "report")
    print(f"report: {html_path.resolve()}")


def _configs(args: argparse.Namespace) -> None:
    """``configs``: every shipped config with its first comment line; ``configs show NAME``: the file;
    ``configs copy NAME DEST``: a copy to edit (DEST a file or a folder; an existing file is kept)."""
    from ctrlgym.experiment.config import config_path, shipped_configs

    action, *rest = args.what or ["list"]
    if action == "list" and not rest:  # grouped by family, one line each
        family = None
        for name, path in shipped_configs().items():
            if name.split("/")[0] != family:
                family = name.split("/")[0]
                print(f"{family}:")
            lines = path.read_text().splitlines()
            first = next((line.lstrip("# ").strip() for line in lines if line.startswith("#")), "")
            print(f"  {name:<46} {first[:100] + ('...' if len(first) > 100 else '')}")
        print("\nctrlgym configs show NAME prints one, configs copy NAME DEST copies it to edit, train NAME runs it")
        return
    if action == "show" and len(rest) == 1:
        print(config_path(rest[0]).read_text(), end="")
        return
    if action == "copy" and len(rest) == 2:
        source, destination = config_path(rest[0]), Path(rest[1])
        if destination.is_dir():
            destination = destination / source.name
        if destination.exists():
            raise UsageError(f"{destination} exists already; give another name or delete it first")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(source.read_text())
        print(f"copied {rest[0]} to {destination}; edit it, then: ctrlgym train {destination}")
        return
    raise UsageError(
        f"configs {' '.join(args.what)}: expected `configs`, `configs show NAME` or `configs copy NAME DEST`"
    )


def _enjoy(args: argparse.Namespace) -> None:
    """Roll out a trained agent on its env (greedy actions) and print each episode's return and metrics."""
    import os

    from ctrlgym.experiment.evaluation import evaluate_policy
    from ctrlgym.experiment.loading import load
    from ctrlgym.registry import get_entry

    policy = load(args.run_dir, args.seed)
    config = policy.config
    env_id = get_entry(args.env).env_id if args.env else config.env.id
    kwargs = dict(config.env.kwargs)
    if args.gui:
        from ctrlgym.experiment.config import takes_keyword

        if not takes_keyword(get_entry(env_id).vector_cls, "gui"):
            raise UsageError(f"--gui: {env_id} has no GUI (the SUMO envs open sumo-gui)")
        if not os.environ.get("DISPLAY"):
            raise UsageError("--gui needs a display (DISPLAY is not set); run without --gui to print the episodes")
        kwargs.update(gui=True, backend="traci")
    result = evaluate_policy(
        policy.make_policy, env_id, episodes=args.episodes, seed=args.eval_seed, device=config.env.device, **kwargs
    )
    print(f"{policy}: {args.episodes} episode(s) on {env_id}, seed {args.eval_seed}")
    for episode, value in enumerate(result["episode_returns"]):
        print(f"episode {episode}: return {value:.4g}")
    for name, value in sorted(result["metrics"].items()):
        print(f"{name:<24} {value:.4g}  (mean over the episodes)")


def _tune(args: argparse.Namespace) -> None:
    from ctrlgym.experiment.config import load_config
    from ctrlgym.experiment.tuning import tune

    result = tune(
        load_config(args.config, args.set),
        trials=args.trials,
        executor=args.executor,
        address=args.address,
        progress=not args.no_progress,
    )
    direction = "higher" if result["direction"] == "maximize" else "lower"
    print(
        f"{result['complete']} trials complete, {result['pruned']} pruned; best: trial {result['best_trial']}, "
        f"{result['metric']} {result['best_value']:.4g} ({direction} is better)"
    )
    for key, value in result["best_params"].items():
        print(f"  {key} = {value}")
    print(f"the config with them: {result['best_config']}  (ctrlgym train {result['best_config']})")


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from ctrlgym.experiment.provenance import version

    parser = argparse.ArgumentParser(
        prog="ctrlgym", description="Batched torch RL control environments, agents and solvers."
    )
    parser.add_argument("--version", action="version", version=f"ctrlgym {version()}")
    common = argparse.ArgumentParser(add_help=False)  # the flags every command takes
    common.add_argument("--no-progress", action="store_true", help="hide progress bars")
    common.add_argument("--debug", action="store_true", help="show the traceback of ctrlgym's own errors too")
    common.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="intra-op threads of ctrlgym's hot paths (default 1; CTRLGYM_NUM_THREADS)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[common], **kwargs)

    configs = command(
        "configs", help="list the experiment configs that ship with ctrlgym (run one by name), show or copy one"
    )
    configs.add_argument("what", nargs="*", metavar="show NAME | copy NAME DEST", help="nothing: list them")
    configs.set_defaults(run=_configs)

    command("list", help="list the registered environments").set_defaults(run=_list)

    check = command("check", help="run the conformance checkers on a registered env")
    check.add_argument("env_id")
    check.add_argument("--num-envs", type=int, default=4)
    check.add_argument("--device", default="cpu")
    check.set_defaults(run=_check)

    train = command("train", help="train the agent of a YAML experiment config")
    train.add_argument("config", type=Path, help="a YAML file, or the name of a shipped config (`ctrlgym configs`)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoints of the run")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in output_dir (moved aside, deleted once the new run is set up) and start again",
    )
    train.add_argument(
        "--seeds",
        type=_int_list,
        default=None,
        metavar="S,S",
        help="train only these of the config's seeds (other processes may train the rest)",
    )
    train.set_defaults(run=_train, interrupted=_train_interrupted)

    evaluate = command("evaluate", help="evaluate a run's agent against the env's baselines")
    evaluate.add_argument(
        "run_dir", type=Path, help="a run directory, or a config (agent: null evaluates baselines only)"
    )
    evaluate.add_argument(
        "--env",
        default=None,
        help="evaluate on another env with the run's kwargs (e.g. trained on the traffic twin, evaluated on SUMO)",
    )
    evaluate.add_argument(
        "--seeds", type=_int_list, default=None, metavar="S,S", help="evaluate only these of the config's seeds"
    )
    evaluate.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run of another config in output_dir (moved aside, deleted once the new run is set up)",
    )
    evaluate.add_argument(
        "--policies",
        type=lambda text: text.split(","),
        default=None,
        metavar="P,P",
        help="evaluate only these policies",
    )
    evaluate.set_defaults(run=_evaluate, interrupted=_evaluate_interrupted)

    solve = command("solve", help="exact and frozen-state DP on the env's exact model (config's solve section)")
    solve.add_argument("config", type=Path)
    solve.set_defaults(
        run=_solve, interrupted=lambda args: f"nothing of the solve is saved; run it again: ctrlgym solve {args.config}"
    )

    tune = command("tune", help="search the hyperparameters of the config's tune section with Optuna (resumable)")
    tune.add_argument("config", type=Path, help="a YAML file with a tune section, or a shipped config's name")
    tune.add_argument("--trials", type=int, default=None, help="finished trials to reach (default: tune.trials)")
    tune.set_defaults(
        run=_tune,
        interrupted=lambda args: f"finished trials are kept in the study; continue with: ctrlgym tune {args.config}",
    )

    for sub in (train, evaluate, solve, tune):
        sub.add_argument(
            "--set",
            action="append",
            default=None,
            metavar="KEY.PATH=VALUE",
            help="override a config value (repeatable), e.g. --set agent.total_timesteps=2048 --set seeds=[0,1]",
        )
        sub.add_argument(
            "--executor",
            choices=("local", "ray"),
            default="local",
            help="local: this process; ray: one Ray task per job (pip install 'ctrlgym[ray]')",
        )
        sub.add_argument(
            "--address", default=None, help="with --executor ray: the Ray cluster to join (default: start a local Ray)"
        )

    report = command("report", help="write an HTML, Markdown and JSON report for runs (default: reports/<run name>)")
    report.add_argument("run_dirs", type=Path, nargs="+")
    report.add_argument(
        "-o", "--output", type=Path, default=None, help="OUTPUT.html, .md and .json (default: reports/<run name>)"
    )
    report.add_argument(
        "--benchmark",
        action="store_true",
        help="one benchmark across tasks: per-task IQM [CI], P(reference better), performance profile, cost",
    )
    report.add_argument(
        "--across",
        default="scenario",
        metavar="KWARG",
        help="with --benchmark: the env kwarg that names a task (default: scenario)",
    )
    report.add_argument(
        "--reference",
        default=None,
        metavar="POLICY",
        help="with --benchmark: the policy compared with every other (default: the first agent run)",
    )
    report.set_defaults(run=_report)

    enjoy = command("enjoy", help="roll out a trained agent and print its episodes (SUMO: --gui to watch)")
    enjoy.add_argument("run_dir", type=Path, help="a run directory whose training has finished")
    enjoy.add_argument("--seed", type=int, default=None, help="which training seed's agent (default: the run's first)")
    enjoy.add_argument("--episodes", type=int, default=1, help="episodes, run as one batch (default 1)")
    enjoy.add_argument("--eval-seed", type=int, default=0, help="the env's seed (default 0)")
    enjoy.add_argument(
        "--env", default=None, help="another env with the same spaces (e.g. trained on the twin, run on SUMO)"
    )
    enjoy.add_argument("--gui", action="store_true", help="SUMO envs: open sumo-gui (needs a display)")
    enjoy.set_defaults(run=_enjoy)

    demo = command("demo", help="train PPO on MultiClassQueue, evaluate against baselines, report")
    demo.add_argument("--output-dir", type=Path, default=Path("runs/demo"))
    demo.add_argument("--timesteps", type=int, default=None, help="env steps per seed (default: the config's)")
    demo.set_defaults(run=_demo)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        from ctrlgym.threads import set_num_threads

        set_num_threads(args.threads)
    try:
        status = args.run(args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C: where the run stands and how to go on, no traceback
        said = getattr(args, "interrupted", None)
        print(f"\nctrlgym: interrupted. {said(args) if said else ''}".rstrip(), file=sys.stderr)
        return 130
    except CtrlgymError as error:  # about the user's input: one line (a traceback with --debug)
        if args.debug:
            raise
        print(f"ctrlgym: error: {error}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
