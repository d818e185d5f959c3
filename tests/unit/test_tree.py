"""The repository holds source, docs and shipped data only: no test-run folders, server data or
logs. A tracked file over 1 MB is one of those unless it is shipped data listed here."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1_000_000
# Shipped data allowed to be larger (none is, today); add a path here with the reason.
ALLOWED: dict[str, str] = {}
# What the tests and the embedded servers write: never tracked, never in an image's context.
TEST_RUN_FOLDERS = (".pytest-tmp", ".pytest-tmp-ci", ".rollcall", "test-artifacts")


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_tracked_file_is_larger_than_a_megabyte_unless_it_is_shipped_data() -> None:
    large = {p: (ROOT / p).stat().st_size for p in tracked()
             if (ROOT / p).is_file() and (ROOT / p).stat().st_size > LIMIT}
    assert set(large) <= set(ALLOWED), f"large tracked files: {large}"


def test_no_test_run_folder_is_tracked() -> None:
    assert not [p for p in tracked()
                if p.split("/")[0].startswith(".pytest-tmp") or p.startswith(".rollcall/")]


def test_test_run_folders_are_ignored_by_git_and_by_the_image_build() -> None:
    probes = [f"{folder}/probe.log" for folder in TEST_RUN_FOLDERS] + [".pytest-tmp-u/x.log"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert sorted(ignored) == sorted(probes)
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for folder in (".pytest-tmp", ".pytest-tmp-u", ".rollcall", "test-artifacts"):
        assert any(folder == p or (p.endswith("*") and folder.startswith(p[:-1]))
                   for p in patterns), f"{folder} would go into the image's build context"
