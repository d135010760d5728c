"""The wheel holds every package of the tree and the benches' results."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("course_lib", "autograder")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml's [tool.setuptools] packages: {sorted(found - listed)}"


def test_bench_results_load_from_the_checkout():
    from course_lib.utils import bench_results

    results = bench_results("maddpg")
    assert isinstance(results, dict) and results, "bench/results/maddpg.json should load as a non-empty dict"
    assert bench_results("no_such_bench") is None


def test_every_task_has_a_description():
    from course_lib.tasks import describe, task_names

    missing = [name for name in task_names() if not describe(name)]
    assert not missing, f"tasks without a one-line description in course_lib.tasks.DESCRIPTIONS: {missing}"
