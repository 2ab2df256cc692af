"""From a built wheel in a fresh venv, run from another directory: shipped configs work by name."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # subprocesses, clusters or a wheel build: `make test`, not `make test-fast`

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # built from a copy: setuptools' build/ and egg-info stay out of the checkout
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for (
        name
    ) in listed.stdout.splitlines():  # what a clone has (and new files not yet committed), nothing the checkout built
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work), str(source)],
        check=True,
    )
    wheel = next(work.glob("ctrlgym-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], check=True
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )  # torch & co. from this env; ctrlgym only from the wheel
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return venv, elsewhere


def run(venv, cwd, *args):
    return subprocess.run([str(venv / "bin" / "ctrlgym"), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_wheel_ships_configs_license_and_version(installed_wheel):
    venv, elsewhere = installed_wheel
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import ctrlgym; print(ctrlgym.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout  # the wheel's copy, not this checkout
    assert (Path(where.stdout.strip()).parent / "py.typed").is_file()  # type checkers read our annotations (PEP 561)
    listing = run(venv, elsewhere, "configs")
    assert (
        listing.returncode == 0
        and "fastslow/ppo_multiclass_queue " in listing.stdout
        and "traffic/resco_baselines" in listing.stdout
        and "traffic/benchmark/classics" in listing.stdout
    )
    assert run(venv, elsewhere, "--version").stdout.strip().startswith("ctrlgym ")
    licenses = list((venv / "lib").glob("python*/site-packages/ctrlgym-*.dist-info/licenses/LICENSE"))
    assert licenses and "MIT License" in licenses[0].read_text()


def test_a_shipped_config_trains_by_name_from_another_directory(installed_wheel):
    venv, elsewhere = installed_wheel
    trained = run(venv, elsewhere, "train", "quickstart/ppo_multiclass_queue_tiny", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert (elsewhere / "runs" / "ppo_multiclass_queue_tiny" / "seed_0" / "final_model.zip").is_file()


def test_import_ctrlgym_stays_light():
    """``import ctrlgym`` registers every env by entry point but imports no family, simulator, data set
    or SciPy; making an env imports its family (and only it)."""
    code = (
        "import sys, ctrlgym\n"
        "heavy = ('sumolib', 'traci', 'libsumo', 'sklearn', 'scipy', 'stable_baselines3', 'matplotlib')\n"
        "families = lambda: sorted({m.split('.')[2] for m in sys.modules if m.startswith('ctrlgym.envs.')})\n"
        "print(','.join(m for m in heavy if m in sys.modules), families(), len(ctrlgym.registered_envs()))\n"
        "ctrlgym.make_vector_env('ctrlgym/BeamformingEnv-v0', 2)\n"
        "print(families())"
    )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0] == " [] 12"  # nothing heavy, no family, all twelve envs registered
    assert lines[1] == "['beamforming']"
