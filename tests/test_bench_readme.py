"""bench/README.md shows what the benches last wrote: no measured number typed, none left behind."""
from __future__ import annotations

from conftest import load_bench


def test_bench_readme_holds_every_benchs_current_tables():
    update = load_bench("update_readme")
    text = update.README.read_text()
    refreshed, missing = update.updated(text)
    assert not missing, f"bench/README.md names tables that no bench wrote: {missing}"
    assert refreshed == text, "bench/README.md is behind bench/README_*.md: run `python bench/update_readme.py`"
