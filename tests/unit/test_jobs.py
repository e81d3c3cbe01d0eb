"""The scheduler's job table is what the packages' `jobs.py` list, and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from apscheduler.triggers.interval import IntervalTrigger

import app.jobs
from app.core.floors import discover, package_of
from app.core.scheduling import Job

ROOT = Path(__file__).resolve().parents[2]


def _discovered() -> dict[str, tuple[Job, ...]]:
    return {module.__name__: module.JOBS for module in discover("jobs")}


def test_every_jobs_module_lists_jobs():
    found = _discovered()
    assert found, "no package has a jobs.py"
    for name, jobs in found.items():
        assert jobs, f"{name} has no JOBS"
        assert all(isinstance(job, Job) for job in jobs), name


def test_job_ids_are_unique_across_packages():
    ids = [job.id for jobs in _discovered().values() for job in jobs]
    assert len(ids) == len(set(ids))


def test_the_job_table_is_the_discovered_jobs_lowest_floor_first():
    assert app.jobs.JOBS == tuple(job for jobs in _discovered().values() for job in jobs)


def test_the_job_table_names_no_package_jobs_by_hand():
    tree = ast.parse((ROOT / "app" / "jobs.py").read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
    assert [m for m in imported if package_of(m) not in (None, "app.core")] == []


def test_a_job_id_used_twice_is_refused(monkeypatch):
    job = Job(id="twice", func=print, trigger=IntervalTrigger(minutes=1), description="x")
    modules = [SimpleNamespace(JOBS=(job,)), SimpleNamespace(JOBS=(job,))]
    monkeypatch.setattr(app.jobs, "discover", lambda name: modules)
    with pytest.raises(ValueError, match="twice"):
        app.jobs.collect_jobs()
