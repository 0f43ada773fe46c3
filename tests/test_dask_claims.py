"""verify.all on Dask: same records as in-process, a dead worker makes its claim an error, bad schedulers exit 2."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = "linear.init.single,dln.init.monotone,dln.gfs.monotone"


def _run(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "verify.all", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _records(out):
    return [(r["id"], r["seed"], r["status"], r["value"], json.dumps(r["details"], sort_keys=True))
            for r in json.loads((out / "report.json").read_text())["records"]]


def test_two_workers_give_the_records_of_one_process(tmp_path):
    one = _run("--only", FAST, "--seeds", "0-1", "--workers", "1", "--out", str(tmp_path / "one"))
    two = _run("--only", FAST, "--seeds", "0-1", "--workers", "2", "--out", str(tmp_path / "two"))
    assert one.returncode == 0 and two.returncode == 0, one.stdout + two.stdout + two.stderr
    assert _records(tmp_path / "one") == _records(tmp_path / "two")
    assert json.loads((tmp_path / "two" / "report.json").read_text())["environment"]["workers"] == 2


def test_worker_that_dies_mid_claim_makes_that_claim_an_error(tmp_path):
    (tmp_path / "dying_claims.py").write_text(
        "import os\n"
        "from verify.claims import claim\n"
        "@claim('test.dies', 'a claim whose worker process exits', 'none', kind='derived')\n"
        "def dies(ctx):\n"
        "    os._exit(3)\n")
    env = dict(os.environ, VERIFY_CLAIM_MODULES="dying_claims",
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    res = _run("--only", "test.dies,linear.init.single", "--workers", "2", "--out", str(tmp_path / "o"), env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    recs = {r["id"]: r for r in json.loads((tmp_path / "o" / "report.json").read_text())["records"]}
    assert recs["test.dies"]["status"] == "error" and "worker" in recs["test.dies"]["details"]["error"]
    assert recs["linear.init.single"]["status"] == "pass"


def test_a_claim_past_its_timeout_is_an_error_and_claims_queued_behind_it_still_run(tmp_path):
    (tmp_path / "slow_claims.py").write_text(
        "import time\n"
        "from verify.claims import claim\n"
        "for k in (1, 2):\n"
        "    claim(f'test.slow{k}', 'a claim that outlasts its timeout', 'none', kind='derived')(\n"
        "        lambda ctx: time.sleep(120))\n")
    out = tmp_path / "o"
    out.mkdir()
    fast = ["linear.init.single", "dln.init.monotone", "dln.gfs.monotone"]
    (out / "report.json").write_text(json.dumps({"environment": {"mode": "quick"},
                                                 "records": [{"id": "test.slow1", "seconds": 100},
                                                             {"id": "test.slow2", "seconds": 100}]}))
    env = dict(os.environ, VERIFY_CLAIM_MODULES="slow_claims",
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    res = _run("--only", ",".join(["test.slow1", "test.slow2", *fast]), "--workers", "2", "--timeout", "20",
               "--out", str(out), env=env)
    recs = {r["id"]: r for r in json.loads((out / "report.json").read_text())["records"]}
    assert [recs[f"test.slow{k}"]["status"] for k in (1, 2)] == ["error", "error"], res.stdout + res.stderr
    assert all("timeout" in recs[f"test.slow{k}"]["details"]["error"] for k in (1, 2))
    assert [recs[c]["status"] for c in fast] == ["pass", "pass", "pass"], res.stdout + res.stderr


def test_unreachable_scheduler_is_one_line_and_exit_2_within_seconds(tmp_path):
    t0 = time.perf_counter()
    res = _run("--scheduler", "tcp://127.0.0.1:9", "--only", "linear.init.single", "--out", str(tmp_path))
    assert res.returncode == 2 and time.perf_counter() - t0 < 60
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--scheduler" in lines[0] and "Traceback" not in res.stderr


def test_local_workers_keep_glibcs_dynamic_mmap_threshold():
    from verify.sweeps.cluster import connect, disconnect

    client, cluster = connect(None, 1)
    try:
        env = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")})
    finally:
        disconnect(client, cluster)
    (worker_env,) = env.values()
    assert worker_env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}


def test_every_claim_has_an_expected_cost_for_the_task_order():
    from verify.claims import load_all
    from verify.cli.costs import expected_seconds

    assert set(load_all()) - {"test.dies", "test.slow1", "test.slow2"} <= set(expected_seconds(quick=True))


def test_an_earlier_report_of_the_other_size_does_not_order_the_tasks(tmp_path):
    from verify.cli.costs import previous_seconds

    rep = {"environment": {"mode": "full"}, "records": [{"id": "a", "seconds": 9.0}]}
    (tmp_path / "report.json").write_text(json.dumps(rep))
    assert previous_seconds(tmp_path / "report.json", quick=True) == {}
    assert previous_seconds(tmp_path / "report.json", quick=False) == {"a": 9.0}
