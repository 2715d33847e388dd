"""``summary.md``: the run's results against the goals, for people."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _stage_table(stages: dict[str, Any]) -> list[str]:
    lines = ["| stage | status | seconds | note |", "|---|---|---|---|"]
    for name, stage in stages.items():
        note = stage.get("reason") or stage.get("error") or stage.get("problem") or ""
        lines.append(
            f"| {name} | {stage['status']} | {_fmt(stage.get('seconds'), '.1f')} | "
            f"{str(note).splitlines()[0][:200] if note else ''} |"
        )
    return lines


def _goals(stages: dict[str, Any]) -> list[str]:
    lines = ["## Goals", ""]
    speed = stages.get("speed", {}).get("result") or {}
    best = speed.get("best")
    if best:
        lines.append(
            f"- Shipped model >= 20,000 windows/s: best {best['windows_per_s']:,.0f} windows/s "
            f"({best['variant']}, batch {best['batch']}); fp32 "
            f"{_fmt(speed.get('fp32_best_windows_per_s'), ',.0f')}: "
            f"{'met' if speed.get('goal_met') else 'not met'}."
        )
    else:
        lines.append("- Shipped model >= 20,000 windows/s: not measured.")
    engine = stages.get("engine", {}).get("result") or {}
    maxipix = next((v for k, v in engine.items() if k.startswith("maxipix_2x2")), None)
    if maxipix:
        for precision in ("fp32", "bf16"):
            entry = maxipix.get(precision, {})
            if "seconds" in entry:
                lines.append(
                    f"- 128 x 516 x 516 MAXIPIX 2x2, {precision}: {entry['seconds']:.3f} s from "
                    f"host memory (transfers {entry['transfer_share']:.0%}, host gather/blend "
                    f"{entry['host_share']:.0%}); model work alone "
                    f"{entry['device_compute_s']:.3f} s vs the < 0.1 s goal once on the GPU."
                )
    else:
        lines.append("- 128 x 516 x 516 MAXIPIX 2x2 in < 0.1 s once on the GPU: not measured.")
    live = stages.get("live", {}).get("result") or {}
    for precision, entry in live.items():
        if "kept_up" in entry:
            lines.append(
                f"- Live path at {entry['rate_fps']:.0f} frames/s ({precision}): "
                f"{'kept up' if entry['kept_up'] else 'fell behind'} "
                f"({entry['mean_ms_per_frame']:.2f} ms per frame), end-of-scan latency "
                f"{entry['end_of_scan_latency_s']:.3f} s."
            )
    phasing = stages.get("phasing", {}).get("result") or {}
    full = phasing.get("scan_end_full") or {}
    if "seconds" in full:
        lines.append(
            f"- Crystal at scan end, {' x '.join(map(str, full['scan']))} at full resolution: "
            f"{full['seconds']:.1f} s vs the < {full['goal_s']:.0f} s goal "
            f"({'met' if full['meets_goal'] else 'not met'}; converged "
            f"{_fmt(full['converged'])}, phase error {full['phase_error_rad']:.3f} rad)."
        )
    else:
        lines.append("- Crystal at scan end in < 30 s on the GPU: not measured.")
    for row in phasing.get("speed", []):
        lines.append(
            f"- Phasing {' x '.join(map(str, row['grid']))}, 4 starts: "
            f"{row['iterations_per_s']:.0f} iterations/s "
            f"({row['seconds_650_iterations']:.1f} s for the default 650-iteration recipe)."
        )
    return [*lines, ""]


def _correctness(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Correctness (gpu tests)",
        "",
        f"passed {result.get('passed')}, failed {result.get('failed')}, errors "
        f"{result.get('error')}, skipped {result.get('skipped')} (exit code "
        f"{result.get('exit_code')}); output in gpu_tests.txt.",
        "",
    ]
    for test in result.get("tests", []):
        props = ", ".join(
            f"{k} {_fmt(v)}"
            for k, v in test["properties"].items()
            if not k.startswith(("w6", "w12", "w38"))
        )
        why = f" ({test['message'].splitlines()[0][:150]})" if test["message"] else ""
        lines.append(f"- {test['test']}: {test['outcome']}{why}{'; ' + props if props else ''}")
    return [*lines, ""]


def _speed(result: dict[str, Any]) -> list[str]:
    lines = ["## Model throughput (windows/s, 32^3 windows on the device)", ""]
    for name, entry in result.get("variants", {}).items():
        if "skipped" in entry:
            lines.append(f"- {name}: skipped ({entry['skipped']})")
            continue
        cells = [
            f"batch {r['batch']}: "
            + (
                f"{r['windows_per_s']:,.0f}"
                if "windows_per_s" in r
                else r.get("error") or r.get("skipped", "?")
            )
            for r in entry["rows"]
        ]
        lines.append(f"- {name}: " + "; ".join(cells))
    return [*lines, ""]


def _engine(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Engine end to end (from host memory)",
        "",
        "| case | precision | s | windows | windows/s | batch | peak GPU GB | transfers | "
        "host gather/blend | model work s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, entries in result.items():
        for precision in ("fp32", "bf16"):
            e = entries.get(precision, {})
            if "seconds" not in e:
                lines.append(f"| {case} | {precision} | {e.get('skipped', '-')} |" + " |" * 7)
                continue
            lines.append(
                f"| {case} | {precision} | {e['seconds']:.3f} | {e['windows']} | "
                f"{e['windows_per_s']:,.0f} | {e['batch_size_used']} | "
                f"{_fmt(e.get('peak_gpu_gb'))} | {e['transfer_share']:.0%} | "
                f"{e['host_share']:.0%} | {e['device_compute_s']:.3f} |"
            )
    return [*lines, ""]


def _training(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Training (bf16)",
        "",
        f"model {result.get('model_config')}, {_fmt(result.get('parameters'))} parameters, "
        f"{_fmt(result.get('weights_bytes'))} bytes; data {result.get('data_volumes')} crystals "
        f"in {_fmt(result.get('data_s'), '.1f')} s ({result.get('data_workers')} workers); "
        f"{result.get('steps')} steps in {_fmt(result.get('train_s'), '.1f')} s "
        f"({_fmt(result.get('seconds_per_step'), '.3f')} s/step).",
        "",
        f"best epoch: {result.get('best_epoch')}",
        "",
    ]
    if "validation_table" in result:
        lines += ["### Validation (held-out simulated scans)", "", result["validation_table"], ""]
    elif "validation" in result:
        lines += [f"Validation: {result['validation']}", ""]
    return lines


def _real_space(result: dict[str, Any]) -> list[str]:
    """Cases phased; the tables come from ``real_space.jsonl`` afterwards."""
    return [
        "",
        "## Real space",
        "",
        f"{result['cases_done']} of {result['cases_planned']} cases phased with every practice "
        f"(crop {result['crop']}, slowest case {_fmt(result.get('seconds_per_case_max'))} s"
        f"{'; ' + result['stopped'] if result.get('stopped') else ''}); rows in "
        f"`{result['rows']}`.",
        "",
    ]


SECTIONS = {
    "correctness": _correctness,
    "speed": _speed,
    "engine": _engine,
    "real_space": _real_space,
    "training": _training,
}


def render(summary: dict[str, Any]) -> str:
    """The whole report."""
    env = summary["environment"]
    stages = summary["stages"]
    lines = [
        f"# GPU run {summary['started']}{' (DRY RUN, tiny sizes)' if summary['dry_run'] else ''}",
        "",
        f"device {env.get('gpu') or summary['device']}, torch {env['torch']} (CUDA "
        f"{env.get('cuda')}), {env['cpu_count']} CPU cores, commit {env.get('commit')}; "
        f"command `{summary['command']}`.",
        "",
        *_stage_table(stages),
        "",
        *_goals(stages),
    ]
    for name, section in SECTIONS.items():
        stage = stages.get(name, {})
        if stage.get("result"):
            lines += section(stage["result"])
    return "\n".join(lines) + "\n"
