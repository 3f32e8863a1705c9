"""Tables of medians, target checks and the machine description."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
from typing import Any

from bench.floor import Model

Record = dict[str, Any]


def med(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def f(v: float | None, nd: int = 1) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def machine() -> dict[str, str]:
    mem = ""
    model = ""
    try:
        with open("/proc/meminfo") as fh:
            kib = int(next(x for x in fh if x.startswith("MemTotal")).split()[1])
            mem = f"{kib / (1 << 20):.1f} GiB"
        with open("/proc/cpuinfo") as fh:
            model = next((x.split(":", 1)[1].strip() for x in fh if x.startswith("model name")), "")
    except OSError:
        pass
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "ram": mem,
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": rev.stdout.strip() + (" + working tree" if rev.returncode == 0 else ""),
    }


def summarize(records: list[Record]) -> list[dict[str, Any]]:
    """One row per (store, scenario, baseline): medians of the gateway and of
    the baseline, and the median over repetitions of gateway ÷ baseline."""
    keys: list[tuple[str, str]] = []
    for r in records:
        if (r["env"], r["scenario"]) not in keys:
            keys.append((r["env"], r["scenario"]))
    rows = []
    for env, sc in keys:
        mine = [r for r in records if r["env"] == env and r["scenario"] == sc]
        gw = {r["rep"]: r for r in mine if r["what"] == "gateway"}
        g = list(gw.values())
        mib = [r["mib_s"] for r in g]
        common = {
            "env": env,
            "scenario": sc,
            "reps": len(g),
            "mib_s": med(mib),
            "mib_min": min(mib, default=None),
            "mib_max": max(mib, default=None),
            "p50_s": med([r["p50_s"] for r in g]),
            "p99_s": med([r["p99_s"] for r in g]),
            "cpu_per_gib": med([r.get("cpu_per_gib") for r in g]),
            "peak_rss_mib": med([r.get("peak_rss_mib") for r in g]),
            "aux_cpu_per_gib": med([r.get("aux_cpu_per_gib") for r in g]),
        }
        labels = list(dict.fromkeys(r["label"] for r in mine if r["what"] == "baseline"))
        for label in labels or [None]:
            base = {r["rep"]: r for r in mine if r["what"] == "baseline" and r["label"] == label}
            rows.append({
                **common,
                "errors": sum(r["errors"] for r in g) + sum(r["errors"] for r in base.values()),
                "baseline": label,
                "base_mib_s": med([r["mib_s"] for r in base.values()]),
                "ratio": med([
                    gw[i]["mib_s"] / base[i]["mib_s"]
                    for i in gw
                    if i in base and base[i]["mib_s"] and gw[i]["mib_s"]
                ]),
            })  # fmt: skip
    return rows


def main_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| store | scenario | gateway MiB/s (min–max) | p50 s | p99 s | gw CPU s/GiB "
        "| gw peak RSS MiB | store CPU s/GiB | baseline | baseline MiB/s | gw ÷ baseline "
        "| errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['env']} | {r['scenario']} | {f(r['mib_s'])} ({f(r['mib_min'], 0)}–"
            f"{f(r['mib_max'], 0)}) | {f(r['p50_s'], 3)} | {f(r['p99_s'], 3)} "
            f"| {f(r['cpu_per_gib'], 2)} | {f(r['peak_rss_mib'], 0)} "
            f"| {f(r['aux_cpu_per_gib'], 2)} | {r['baseline'] or '–'} | {f(r['base_mib_s'])} "
            f"| {f(r['ratio'], 2)} | {r['errors']} |"
        )
    return "\n".join(out)


def cpu_table(records: list[Record]) -> str:
    """Where the CPU goes, per (store, scenario): medians of the client's, the
    gateway's and the store's CPU seconds per GiB on the gateway path and on
    the first baseline, beside 2 CPUs × the wall time per GiB — a path whose
    sum reaches it is CPU-bound, and two CPU-bound paths compare as their sums."""
    out = [
        "| store | scenario | path | client CPU s/GiB | gw CPU s/GiB | store CPU s/GiB "
        "| sum | CPUs × wall s/GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cpus = os.cpu_count() or 1
    keys = list(dict.fromkeys((r["env"], r["scenario"]) for r in records))
    for env, sc in keys:
        mine = [r for r in records if r["env"] == env and r["scenario"] == sc and r["bytes_ok"]]
        first = next((r["label"] for r in mine if r["what"] == "baseline"), None)
        for label, path in ((first, [r for r in mine if r.get("label") == first]),
                            ("gateway", [r for r in mine if r["what"] == "gateway"])):  # fmt: skip
            if not path or label is None:
                continue
            client, gw, store, wall = _path_cpu(path, cpus)
            total = sum(v or 0.0 for v in (client, gw, store))
            out.append(
                f"| {env} | {sc} | {label} | {f(client, 2)} | {f(gw, 2)} | {f(store, 2)} "
                f"| {f(total, 2)} | {f(wall, 2)} |"
            )
    return "\n".join(out)


def _path_cpu(path: list[Record], cpus: int) -> tuple[float | None, ...]:
    """Medians over a path's runs: client, gateway and store CPU s/GiB, and
    CPUs × wall s/GiB."""
    gib = [r["bytes_ok"] / 2**30 for r in path]
    client = med([r["client_cpu_s"] / g for r, g in zip(path, gib, strict=True)])
    gw = med([r.get("cpu_per_gib") or 0.0 for r in path])
    store = med([r.get("aux_cpu_per_gib") or 0.0 for r in path])
    wall = med([r["wall_s"] * cpus / g for r, g in zip(path, gib, strict=True)])
    return client, gw, store, wall


def ceiling_table(
    records: list[Record], rows: list[dict[str, Any]], floors: dict[str, float],
    models: dict[str, Model],
) -> str:  # fmt: skip
    """Per (store, scenario) with a model (``bench.floor``): the best ratio
    against boto3 ×10 a gateway spending only the floor could reach in this
    run — boto3's CPUs × wall ÷ (client + store × (1 + resent) + floor)."""
    out = [
        "| store | scenario | gw floor s/GiB | client CPU s/GiB (gw path) "
        "| store CPU s/GiB (boto3) × taken | boto3 CPUs × wall s/GiB | ceiling | measured "
        "| gw CPU s/GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cpus = os.cpu_count() or 1
    for env, sc in dict.fromkeys((r["env"], r["scenario"]) for r in records):
        model = models.get(sc)
        floor = model.floor(floors) if model is not None else None
        mine = [r for r in records if r["env"] == env and r["scenario"] == sc and r["bytes_ok"]]
        gateway = [r for r in mine if r["what"] == "gateway"]
        base = [r for r in mine if r.get("label") == "boto3 8M×10"]
        if model is None or floor is None or not gateway or not base:
            continue
        client, gw, _, _ = _path_cpu(gateway, cpus)
        _, _, store, wall = _path_cpu(base, cpus)
        if client is None or store is None or wall is None:
            continue
        taken = 1 + model.resent
        ceiling = wall / (client + store * taken + floor)
        out.append(
            f"| {env} | {sc} | {f(floor, 2)} ({model.hashes}) | {f(client, 2)} "
            f"| {f(store, 2)} × {taken:g} | {f(wall, 2)} | {f(ceiling, 2)} "
            f"| {f(_ratio(rows, env, sc, 'boto3 8M×10'), 2)} | {f(gw, 2)} |"
        )
    return "\n".join(out)


def floor_table(floors: dict[str, float]) -> str:
    out = ["| relay | hashes | relay CPU s/GiB |", "|---|---|---|"]
    for key, value in floors.items():
        kind, _, hashes = key.partition("+")
        out.append(f"| {kind} | {hashes or '–'} | {f(value, 2)} |")
    return "\n".join(out)


def peers_table(rows: list[dict[str, Any]], peers: list[str]) -> str:
    out = [
        "| scenario | server | MiB/s | p50 s | p99 s | CPU s/GiB | peak RSS MiB | errors | "
        + " | ".join(f"gw ÷ {p}" for p in peers)
        + " |",
        "|" + "---|" * (8 + len(peers)),
    ]
    for r in rows:
        ratios = " | ".join(f(r.get(f"ratio_{p}"), 2) for p in peers)
        out.append(
            f"| {r['scenario']} | {r['target']} | {f(r['mib_s'])} | {f(r['p50_s'], 3)} "
            f"| {f(r['p99_s'], 3)} | {f(r['cpu_per_gib'], 2)} | {f(r['peak_rss_mib'], 0)} "
            f"| {r['errors']} | {ratios} |"
        )
    return "\n".join(out)


def rss_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| upload (local disk; tus: 8 MiB PATCHes) | MiB/s | gw CPU s/GiB | gw RSS before MiB "
        "| gw peak RSS MiB | errors |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {f(r['mib_s'])} | {f(r['cpu_per_gib'], 2)} "
            f"| {f(r['rss_before_mib'], 0)} | {f(r['peak_rss_mib'], 0)} | {r['errors']} |"
        )
    return "\n".join(out)


def checks(
    rows: list[dict[str, Any]], peer_rows: list[dict[str, Any]], rss_rows: list[dict[str, Any]]
) -> str:
    """The targets of issue 7, each met / missed / not measured."""
    out = ["| target | wanted | measured | |", "|---|---|---|---|"]

    def line(what: str, want: str, value: float | None, ok: bool | None, nd: int = 2) -> None:
        mark = "not measured" if value is None else ("met" if ok else "**missed**")
        out.append(f"| {what} | {want} | {f(value, nd)} | {mark} |")

    def peer_ratio(sc: str) -> float | None:
        return next(
            (
                r.get("ratio_tus-node-file")
                for r in peer_rows
                if r["target"] == "gw" and r["scenario"] == sc
            ),
            None,
        )

    for sc, want in (("tus 1x512M", 2.5), ("tus 64x8M c64", 2.5), ("tus 200x1M c32", 3.0)):
        v = peer_ratio(sc)
        line(f"local {sc}: gw ÷ tus-node-server 2.x", f"≥ {want}", v, v is not None and v >= want)

    def mine(env: str, sc: str, key: str) -> float | None:
        return next((r[key] for r in rows if r["env"] == env and r["scenario"] == sc), None)

    def peers_gw(sc: str, key: str) -> float | None:
        return next(
            (r[key] for r in peer_rows if r["target"] == "gw" and r["scenario"] == sc), None
        )

    for where, v in (
        ("this run", mine("local", "tus 1x512M", "cpu_per_gib")),
        ("peers run", peers_gw("tus 1x512M", "cpu_per_gib")),
    ):
        line(
            f"gw CPU s per GiB, local 1x512M in 8 MiB PATCHes ({where})",
            "≤ 1.5",
            v,
            v is not None and v <= 1.5,
        )
    for where, v in (
        ("this run", mine("local", "tus 64x8M c64", "peak_rss_mib")),
        ("peers run", peers_gw("tus 64x8M c64", "peak_rss_mib")),
    ):
        line(
            f"gw peak RSS MiB, local 64x8M c64 ({where})", "≤ 100", v, v is not None and v <= 100, 0
        )

    def flat(prefix: str, bound: int, unmeasured: str) -> None:
        """Peak RSS growth from the first to the last RSS row named ``prefix…``."""
        some = [r for r in rss_rows if r["scenario"].startswith(prefix)]
        if len(some) < 2 or not all(r["peak_rss_mib"] for r in some):
            line(unmeasured, "flat", None, None)
            return
        growth = some[-1]["peak_rss_mib"] - some[0]["peak_rss_mib"]
        where = f"{some[0]['scenario']} → {some[-1]['scenario']}"
        line(f"gw peak RSS growth {where} (MiB)", f"flat (≤ {bound})", growth, growth <= bound, 0)

    flat("1 × ", 8, "gw peak RSS flat in file size")
    flat("qiniu-v2", 16, "gw peak RSS flat over uploads one after another")
    for env in ("s3-moto", "s3-swift"):
        v = _ratio(rows, env, "tus 1x512M", "boto3 8M×10")
        line(f"{env} tus 1x512M: gw ÷ boto3", "≥ 0.9", v, v is not None and v >= 0.9)
        for sdk in ("qiniu-v1 1x64M", "qiniu-v2 1x64M"):
            v = _ratio(rows, env, sdk, "boto3 8M×10")
            line(f"{env} {sdk} (SDK): gw ÷ boto3", "≥ 0.8", v, v is not None and v >= 0.8)
    for env in ("s3-moto", "s3-swift"):  # issue 22
        for sc, want in (
            ("qiniu-form 200x1M c32", 0.9),
            ("qiniu-v2 1x64M", 0.65),
            ("qiniu-v2 1x64M p8M", 0.9),
        ):
            v = _ratio(rows, env, sc, "boto3 8M×10")
            line(f"{env} {sc}: gw ÷ boto3 ×10", f"≥ {want}", v, v is not None and v >= want)
        form, tus = (_cpu(rows, env, sc) for sc in ("qiniu-form 200x1M c32", "tus 200x1M c32"))
        both = form is not None and tus is not None
        ok = both and form is not None and tus is not None and form <= tus
        what = f"{env} gw CPU s/GiB: qiniu-form 200x1M ≤ tus 200x1M"
        line(what, f"≤ {f(tus, 2)}", form if both else None, ok)
    return "\n".join(out)


def _ratio(rows: list[dict[str, Any]], env: str, scenario: str, baseline: str) -> float | None:
    return next(
        (
            r["ratio"]
            for r in rows
            if r["env"] == env and r["scenario"] == scenario and r["baseline"] == baseline
        ),
        None,
    )


def _cpu(rows: list[dict[str, Any]], env: str, scenario: str) -> float | None:
    return next(
        (r["cpu_per_gib"] for r in rows if r["env"] == env and r["scenario"] == scenario), None
    )
