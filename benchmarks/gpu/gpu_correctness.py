"""Stage ``correctness``: the ``gpu``-marked tests, with the numbers they record."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from gpu_context import Context, StageSkipped

ROOT = Path(__file__).resolve().parents[2]
TEST_DIR = "tests/gpu"
#: At most this long for the tests (the GPU node: about a minute).
TIMEOUT_S = 240.0


def _value(text: str | None) -> Any:
    """Property values come back as text: numbers as numbers."""
    if text is None:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def parse_junit(path: Path) -> list[dict[str, Any]]:
    """One record per test case: name, outcome, seconds, message, recorded properties."""
    records = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", None
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (element.get("message") or element.text or "").strip()[:2000]
                break
        records.append(
            {
                "test": case.get("name"),
                "outcome": outcome,
                "seconds": float(case.get("time", 0.0)),
                "message": message,
                "properties": {
                    p.get("name"): _value(p.get("value")) for p in case.iter("property")
                },
            }
        )
    return records


def run(ctx: Context) -> dict[str, Any]:
    """Run ``pytest -m gpu tests/gpu`` in a subprocess; its output goes to ``gpu_tests.txt``."""
    timeout = min(TIMEOUT_S, ctx.left() - 5)
    if timeout < 30:
        raise StageSkipped(f"only {ctx.left():.0f} s left")
    junit = ctx.work / "gpu_tests.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        TEST_DIR,
        "-m",
        "gpu",
        # tests/conftest.py imports Bluesky and Tiled, which a GPU node lacks
        "--confcutdir",
        TEST_DIR,
        "-p",
        "no:cacheprovider",
        # pyproject's addopts without "-n auto": pytest-xdist is not on a GPU node
        "-o",
        "addopts=--strict-markers -ra",
        # report warnings instead of failing on them (pyproject: "error"): one run only
        "-W",
        "default",
        "-o",
        "junit_family=xunit1",  # keeps record_property
        f"--junitxml={junit}",
        "-rA",
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    log_path = ctx.out / "gpu_tests.txt"
    with log_path.open("w") as log:
        try:
            code = subprocess.run(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    tests = parse_junit(junit) if junit.exists() else []
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error")}
    counts["skipped"] = sum(t["outcome"] == "skipped" for t in tests)
    result: dict[str, Any] = {
        "command": " ".join(command[1:]),
        "exit_code": code,
        "timed_out": code is None,
        **counts,
        "tests": tests,
    }
    if code is None:
        raise RuntimeError(f"the gpu tests ran past {timeout:.0f} s (see gpu_tests.txt)")
    if counts["failed"] or counts["error"] or code != 0:
        result["problem"] = f"pytest exit code {code}, {counts}"
    reasons = {t["message"] for t in tests if t["outcome"] == "skipped"}
    if reasons:
        result["skip_reasons"] = sorted(reasons)
    return result
