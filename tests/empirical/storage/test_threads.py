"""Thread counts from the CPUs this process may use: affinity capped by the cgroup quota, the user's
variables first, passive OpenMP waiting unless set.

Oracles: cgroup files written by hand (v2 ``cpu.max``, v1 ``cfs_quota_us``/``cfs_period_us``) and
``os.sched_getaffinity`` itself.
"""

from __future__ import annotations

import math
import os

import pytest

from empirical.storage import threads


def _v2(root, text):
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def test_cgroup_v2_quota_is_read_in_cpus(tmp_path):
    assert threads.cgroup_cpu_limit(_v2(tmp_path / "a", "150000 100000\n")) == 1.5
    assert threads.cgroup_cpu_limit(_v2(tmp_path / "b", "max 100000\n")) is None


def test_cgroup_v1_quota_is_read_when_there_is_no_v2_file(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 0.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "unlimited"
    assert threads.cgroup_cpu_limit(tmp_path) is None
    assert threads.cgroup_cpu_limit(tmp_path / "absent") is None


def test_available_cpus_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert threads.available_cpus(_v2(tmp_path / "free", "max 100000")) == affinity
    assert threads.available_cpus(_v2(tmp_path / "half", "50000 100000")) == 1  # 0.5 CPU: one thread
    assert threads.available_cpus(_v2(tmp_path / "many", f"{100000 * (affinity + 7)} 100000")) == affinity
    assert threads.available_cpus(_v2(tmp_path / "x", "150000 100000")) == min(affinity, math.ceil(1.5))


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, 1),  # the quota of the fixture's cgroup: half a CPU
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"MKL_NUM_THREADS": "5"}, 5),
    ({"OMP_NUM_THREADS": "4,2"}, 4),  # OpenMP's nested list: the outer level
    ({"OMP_NUM_THREADS": "lots"}, 1),  # not a count: ignored
], ids=["quota", "omp", "mkl", "omp-list", "omp-junk"])
def test_the_users_count_wins_and_is_copied_to_the_variables_not_set(tmp_path, environ, expected):
    root = _v2(tmp_path, "50000 100000")
    environ = dict(environ)
    given = dict(environ)
    assert threads.configure_threads(environ, root=root) == expected
    for name in threads.THREAD_VARIABLES:
        assert environ[name] == given.get(name, str(expected))
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_wait_policy_the_user_set_is_kept(tmp_path):
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    threads.configure_threads(environ, root=_v2(tmp_path, "max 100000"))
    assert environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_only_a_command_changes_the_process(monkeypatch):
    called = []
    monkeypatch.setattr(threads, "configure_threads", lambda: called.append(True) or 2)
    monkeypatch.setattr(threads.sys, "argv", ["/usr/bin/program.py"])
    assert threads.configure_threads_for_command() is None and not called
    monkeypatch.setattr(threads.sys, "argv", ["-m"])  # what python -m sets while importing the package
    assert threads.configure_threads_for_command() == 2 and called
