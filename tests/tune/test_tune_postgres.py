"""Two worker processes, each with its own run folder (as on two machines), join one study in a real
PostgreSQL server on loopback: no lost and no duplicated trials, and the epoch cap holds across them.

The test starts a private server (initdb into a temporary folder, a free port on 127.0.0.1) and stops it
at the end. Without PostgreSQL (Debian's package, installed by ``scripts/system-deps.sh``) it skips and says why.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _pg_bin() -> Path | None:
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"):
        for d in sorted(glob.glob(pattern), reverse=True):
            if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
                return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install 'aerotune[postgres]')")
    bindir = _pg_bin()
    if bindir is None:  # installed by scripts/system-deps.sh (make test runs it), never by a test
        pytest.skip(
            "PostgreSQL's initdb and pg_ctl are not installed; run `make system-deps` as root "
            "(or: sudo apt-get install postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="aerotune-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None
        if as_user is None:
            pytest.skip("running as root without runuser; cannot start PostgreSQL as another user")
        os.chmod(root, 0o777)
        shutil.chown(root, "postgres")
    port = _free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE aerotune")
        conn.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/aerotune"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


def _worker(cache: Path, out: Path, url: str, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "aerotune",
        "tune",
        "--data",
        str(cache),
        "--out",
        str(out),
        "--storage",
        url,
        "--study-name",
        "shared",
        "--patch-size",
        "32",
        "--epochs",
        "6",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=3",
        "--set",
        "train.threads=1",
        "--set",
        "train.progress=false",
        "--heartbeat",
        "2",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run_pair(cache: Path, dirs: list[Path], url: str, *extra: str) -> None:
    procs = [_worker(cache, d, url, *extra) for d in dirs]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text[-3000:]


def _study_trials(url: str):
    import optuna

    from aerotune.tune.storage import sqlalchemy_url

    study = optuna.load_study(study_name="shared", storage=sqlalchemy_url(url))
    try:
        return study.get_trials(), study.user_attrs
    finally:
        study._storage._backend.engine.dispose()


def test_two_workers_share_one_postgres_study(tiny_cache, tmp_path, postgres_url):
    dirs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    _run_pair(tiny_cache.root, dirs, postgres_url, "--trials", "8")
    trials, attrs = _study_trials(postgres_url)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(8))  # none lost, none duplicated
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    homes = {}
    for t in trials:
        found = [d for d in dirs if (d / "trials" / f"{t.number:04d}" / "history.json").is_file()]
        assert len(found) == 1, f"trial {t.number} ran in {found}"
        homes[t.number] = found[0]
        assert t.user_attrs["run_dir"] == f"trials/{t.number:04d}"
    assert set(homes.values()) == set(dirs)  # both machines took trials
    assert attrs["aerotune:epochs_claimed"] == sum(max(t.intermediate_values) for t in trials)
    assert sum(1 for t in trials if t.user_attrs.get("baseline")) == 1
    for d in dirs:  # each machine exports the whole study
        assert len(json.loads((d / "trials.json").read_text())) == 8
        study = json.loads((d / "study.json").read_text())
        assert study["storage"] == postgres_url and study["study_name"] == "shared"

    # Resumed with more trials and an epoch cap: the cap is exact across the two processes.
    spent = attrs["aerotune:epochs_claimed"]
    _run_pair(tiny_cache.root, dirs, postgres_url, "--trials", "30", "--max-epochs-total", str(spent + 7))
    trials, attrs = _study_trials(postgres_url)
    assert attrs["aerotune:epochs_claimed"] == spent + 7
    assert sum(max(t.intermediate_values) for t in trials if t.intermediate_values) == spent + 7
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.state.name != "RUNNING" for t in trials)


def test_password_is_not_written(tiny_cache, tmp_path, postgres_url):
    from aerotune.tune.storage import redact

    assert redact("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact(postgres_url) == postgres_url
