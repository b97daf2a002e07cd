"""Benchmarks steady against what users would do instead, each side by side with its baseline
in one run, and writes the results with the exact commands to BENCHMARKS.md.

usage: python3 bench/run.py [--quick] [--out BENCHMARKS.md]   (bench/run.sh builds first)

Needs: a release build of steady (target/release/steady), hyperfine, flock, timeout, GNU time
(/usr/bin/time); uv for the uv rows (skipped, and said so, without it).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEADY = ROOT / "target" / "release" / "steady"
MAKE_WHEEL = ROOT / "tests" / "fixtures" / "make_wheel.py"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout.strip()


def hyperfine(commands, runs, warmup, work, shell="none"):
    """Runs hyperfine over {name: command}; returns {name: [seconds...]}."""
    out = work / "hf.json"
    args = ["hyperfine", "--style", "none", "--export-json", str(out), "--runs", str(runs), "--warmup", str(warmup)]
    args += ["-N"] if shell == "none" else ["--shell", shell]
    for name, cmd in commands.items():
        args += ["-n", name, cmd]
    subprocess.run(args, check=True, capture_output=True)
    data = json.loads(out.read_text())
    return {r["command"]: r["times"] for r in data["results"]}


def stats(times):
    med = statistics.median(times)
    spread = (statistics.quantiles(times, n=20)[0], statistics.quantiles(times, n=20)[-1]) if len(times) >= 20 else (min(times), max(times))
    return med, spread


def fmt_ms(s):
    return f"{s * 1000:.2f} ms"


def fmt_s(s):
    return f"{s:.2f} s"


def row(name, times, unit=fmt_ms):
    med, (lo, hi) = stats(times)
    return f"| {name} | {unit(med)} | {unit(lo)} – {unit(hi)} | {len(times)} |"


def wall(cmd, env=None):
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def parallel_wall(cmds):
    start = time.perf_counter()
    procs = [subprocess.Popen(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"failed: {p.args}")
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    opts = ap.parse_args()
    q = opts.quick
    if not STEADY.exists():
        raise SystemExit("build first: cargo build --release")
    work = Path(tempfile.mkdtemp(prefix="steady-bench-"))
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("STEADY_"):
            del env[k]
    os.environ.clear()
    os.environ.update(env)
    S = str(STEADY)
    uv = shutil.which("uv")
    md = []
    w = md.append

    w("# Benchmarks\n")
    w("Produced by `bench/run.sh` (which builds the release binary and runs `bench/run.py`). Every")
    w("figure stands beside its baseline, measured in the same run on the same machine. Medians;")
    w("the spread is the 5th–95th percentile where there are 20 or more runs, else min – max.\n")
    w("| machine | |\n|---|---|")
    w(f"| cores | {os.cpu_count()} |")
    w(f"| kernel | {platform.release()} |")
    w(f"| steady | {sh(f'{S} --version')} (release build) |")
    w(f"| hyperfine | {sh('hyperfine --version')} |")
    w(f"| uv | {sh('uv --version') if uv else 'not installed'} |")
    w(f"| date | {time.strftime('%Y-%m-%d')} |\n")

    # 1. Pass-through.
    runs = 100 if q else 500
    cmds = {"true": "true", "steady -- true": f"{S} -- true"}
    if uv:
        cmds["uv --version"] = f"{uv} --version"
        cmds["steady -- uv --version"] = f"{S} -- {uv} --version"
    t = hyperfine(cmds, runs, 50, work)
    w("## 1. Pass-through\n")
    w("A command steady does not know, and a read-only installer subcommand, are exec'd at once.")
    w("Target: within 1.5 ms of the bare command.\n")
    w(f"`hyperfine -N --runs {runs} --warmup 50 'true' '{{steady}} -- true' 'uv --version' '{{steady}} -- uv --version'`\n")
    w("| command | median | spread | runs |\n|---|---|---|---|")
    for name, times in t.items():
        w(row(name, times))
    d1 = statistics.median(t["steady -- true"]) - statistics.median(t["true"])
    line = f"\nCost of steady: {d1 * 1000:.2f} ms on `true`"
    if uv:
        d2 = statistics.median(t["steady -- uv --version"]) - statistics.median(t["uv --version"])
        line += f", {d2 * 1000:.2f} ms on `uv --version`"
    w(line + ".\n")

    # 2. Wrapped run against the field chain.
    cache = work / "cache2"
    cache.mkdir()
    runs = 100 if q else 300
    t = hyperfine(
        {
            "flock LOCK timeout 60 true": f"flock {work}/lock2 timeout 60 true",
            "steady --cache DIR --timeout 60s -- true": f"{S} --cache {cache} --timeout 60s -- true",
        },
        runs,
        20,
        work,
    )
    w("## 2. A locked, supervised run\n")
    w("A trivial command under a lock and a timeout: steady against the field chain of `flock` and")
    w("`timeout`. Target: steady no slower than the chain.\n")
    w(f"`hyperfine -N --runs {runs} --warmup 20 'flock LOCK timeout 60 true' '{{steady}} --cache DIR --timeout 60s -- true'`\n")
    w("| command | median | spread | runs |\n|---|---|---|---|")
    for name, times in t.items():
        w(row(name, times))
    ratio = statistics.median(t["steady --cache DIR --timeout 60s -- true"]) / statistics.median(t["flock LOCK timeout 60 true"])
    w(f"\nsteady / chain: **{ratio:.2f}**.\n")

    # 3. Lock hand-off.
    n, reps = 20, (3 if q else 10)
    cache3 = work / "cache3"
    cache3.mkdir()
    single = [wall(f"{S} --cache {cache3} --timeout 60s -- sleep 0.01") for _ in range(reps * 2)]
    queued = [parallel_wall([f"{S} --cache {cache3} --timeout 60s -- sleep 0.01"] * n) for _ in range(reps)]
    flocked = [parallel_wall([f"flock {work}/lock3 sleep 0.01"] * n) for _ in range(reps)]
    w("## 3. Lock hand-off\n")
    w(f"{n} runs of a 10 ms command started at once on one cache, so they queue on the lock. Target:")
    w("within 10 % of the same queue under `flock`.\n")
    w(f"`{n} × '{{steady}} --cache DIR --timeout 60s -- sleep 0.01'` in parallel, against `{n} × 'flock LOCK sleep 0.01'`\n")
    w("| what | median | spread | runs |\n|---|---|---|---|")
    w(row("one steady run alone", single))
    w(f"| {n} × one run alone (computed) | {fmt_ms(statistics.median(single) * n)} | | |")
    w(row(f"{n} queued steady runs", queued))
    w(row(f"{n} queued flock runs", flocked))
    ratio3 = statistics.median(queued) / statistics.median(flocked)
    w(f"\nsteady queue / flock queue: **{ratio3:.2f}**; steady queue / {n} × alone: {statistics.median(queued) / (statistics.median(single) * n):.2f}.\n")

    # 4. Output throughput and memory.
    size = (256 if q else 1024) * 1024 * 1024
    reps4 = 3 if q else 5
    gen = f"head -c {size} /dev/zero"
    t = hyperfine(
        {"bare | cat": f"{gen} | cat > /dev/null", "steady | cat": f"{S} --timeout 1h -- {gen} | cat > /dev/null"},
        reps4,
        1,
        work,
        shell="sh",
    )
    rss = []
    for _ in range(3):
        out = work / "rss"
        subprocess.run(f"/usr/bin/time -f %M -o {out} {S} --timeout 1h -- {gen} | cat > /dev/null", shell=True, check=True)
        rss.append(int(out.read_text().split()[-1]))
    mib = size / (1024 * 1024)
    bare = statistics.median(t["bare | cat"])
    through = statistics.median(t["steady | cat"])
    w("## 4. Output throughput\n")
    w(f"A command writing {mib:.0f} MiB to a pipe, bare and through steady (which copies it while keeping a")
    w("bounded tail). Target: at least 90 % of bare throughput, steady's peak RSS under 16 MiB.\n")
    w(f"`hyperfine --runs {reps4} '{gen} | cat > /dev/null' '{{steady}} --timeout 1h -- {gen} | cat > /dev/null'`; RSS from `/usr/bin/time -f %M`\n")
    w("| what | median | spread | runs | throughput |\n|---|---|---|---|---|")
    for name, times in t.items():
        med, (lo, hi) = stats(times)
        w(f"| {name} | {fmt_s(med)} | {fmt_s(lo)} – {fmt_s(hi)} | {len(times)} | {mib / med:.0f} MiB/s |")
    w(f"\nThroughput through steady / bare: **{bare / through:.2f}**. steady's peak RSS: **{max(rss) / 1024:.1f} MiB** (max of {len(rss)} runs).\n")

    # 5. Hang recovery.
    fixture = work / "hang-once"
    fixture.write_text('#!/bin/sh\nif [ ! -e "$MARK" ]; then touch "$MARK"; exec sleep 3600; fi\nexit 0\n')
    fixture.chmod(0o755)
    reps5 = 1 if q else 3
    steady_t, field_t = [], []
    stall_ok = "--stall" in sh(f"{S} --help")
    for i in range(reps5):
        e = dict(os.environ, MARK=str(work / f"m-s{i}"))
        if stall_ok:
            steady_t.append(wall(f"{S} --stall 5s --kill-after 1s --backoff 100ms -- {fixture}", env=e))
        e = dict(os.environ, MARK=str(work / f"m-f{i}"))
        field_t.append(wall(f"timeout 15m sh -c 'until timeout 30s {fixture}; do echo retry; done'", env=e))
    w("## 5. Hang recovery\n")
    w("A command that hangs on its first attempt (no output, no CPU) and succeeds on the second: the")
    w("time to success with steady's stall detection, against the field loop with a 30 s per-attempt timeout.\n")
    w(f"`{{steady}} --stall 5s --kill-after 1s --backoff 100ms -- hang-once` against `timeout 15m sh -c 'until timeout 30s hang-once; do echo retry; done'`\n")
    w("| what | median | spread | runs |\n|---|---|---|---|")
    if steady_t:
        w(row("steady --stall 5s", steady_t, fmt_s))
    else:
        w("| steady --stall 5s | not measured: this build has no --stall | | |")
    w(row("field loop, 30 s timeout", field_t, fmt_s))
    if steady_t:
        w(f"\nfield loop / steady: **{statistics.median(field_t) / statistics.median(steady_t):.1f}×** faster recovery with steady.\n")

    # 6. Real uv, broken cache.
    w("## 6. Real uv, one broken cache entry\n")
    if not uv:
        w("Not measured: uv is not installed.\n")
    else:
        wheels = work / "wheels"
        wheels.mkdir()
        names = [f"pkg{i:02d}" for i in range(40)]
        for nme in names:
            subprocess.run([sys.executable, str(MAKE_WHEEL), str(wheels), nme, "1.0"], check=True, capture_output=True)
        uvenv = dict(os.environ, UV_CACHE_DIR=str(work / "uvcache"), UV_NO_CONFIG="1", UV_OFFLINE="1", UV_PYTHON_DOWNLOADS="never")
        args = f"pip install -q --no-index --find-links {wheels} " + " ".join(names)
        reps6 = 2 if q else 5
        targeted, full = [], []
        for i in range(reps6):
            for kind, out in (("t", targeted), ("f", full)):
                shutil.rmtree(work / "uvcache", ignore_errors=True)
                v1, v2 = work / f"v1{kind}{i}", work / f"v2{kind}{i}"
                subprocess.run(f"{uv} venv -q --python python3 {v1} && {uv} venv -q --python python3 {v2} && {uv} {args} --python {v1}/bin/python", shell=True, check=True, env=uvenv)
                meta = next((work / "uvcache" / "archive-v0").glob("*/pkg07-1.0.dist-info/METADATA"))
                meta.unlink()
                if kind == "t":
                    out.append(wall(f"{S} --backoff 10ms -- {uv} {args} --python {v2}/bin/python", env=uvenv))
                else:
                    out.append(wall(f"{uv} cache clean -q && {uv} {args} --python {v2}/bin/python", env=uvenv))
        w(f"{len(names)} locally built wheels cached, one entry's `METADATA` removed, then installed into a")
        w("fresh venv: steady (fails, cleans the one package, retries) against a full `uv cache clean` and")
        w("a reinstall (what users do by hand).\n")
        w(f"`{{steady}} --backoff 10ms -- uv pip install --no-index --find-links WHEELS pkg00 … pkg39` against `uv cache clean && uv pip install …`\n")
        w("| what | median | spread | runs |\n|---|---|---|---|")
        w(row("steady, targeted clean", targeted))
        w(row("uv cache clean, reinstall", full))
        w(f"\nfull clean / steady: **{statistics.median(full) / statistics.median(targeted):.2f}** (with wheels on local disk; from a real index the full clean also re-downloads all {len(names)}).\n")

    Path(opts.out).write_text("\n".join(md) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
