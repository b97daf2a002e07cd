"""Benchmarks steady against what users would do instead, each side by side with its baseline
in one run, and writes the results with the exact commands to BENCHMARKS.md.

usage: python3 bench/run.py [--quick] [--only SECTION,...] [--out FILE]
                            [--supervise-secs N] [--tree-size N] [--rate MBPS]
(bench/run.sh builds first and brings the tools; run that.)

Sections: passthrough, locked, queue, throughput, hang, recovery, overhead, scale.

Needs: a release build of steady: the static one (target/<arch>-unknown-linux-musl/release/steady,
what the releases ship) where it was built, else target/release/steady; hyperfine, flock, timeout, GNU time
(/usr/bin/time); uv and pip for the Python rows and npm for the npm rows (each skipped, and said
so, without it).
"""
import argparse
import base64
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GNU_BUILD = ROOT / "target" / "release" / "steady"
STATIC_BUILD = ROOT / "target" / f"{platform.machine()}-unknown-linux-musl" / "release" / "steady"
STEADY = STATIC_BUILD if STATIC_BUILD.exists() else GNU_BUILD
sys.path.insert(0, str(ROOT / "bench"))
import fixtures  # noqa: E402

SECTIONS = ["passthrough", "locked", "queue", "throughput", "hang", "recovery", "overhead", "scale"]

# (figure, target, how to judge) for the summary; filled in as sections run.
VERDICTS = []


def verdict(figure, target, value, met):
    VERDICTS.append((figure, target, value, "met" if met is True else ("not met" if met is False else met)))


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout.strip()


ROUNDS = 10


def hyperfine(commands, runs, warmup, work, shell="none", prepare=None):
    """Runs hyperfine over {name: command}; returns {name: [seconds...]}.

    The runs are split into ROUNDS rounds that take the commands in turn (in reverse order
    every other round): on a VM whose speed drifts by tens of percent over a minute, a command
    measured after another would otherwise be compared with a different machine."""
    out = work / "hf.json"
    rounds = max(1, min(ROUNDS, runs // 10))
    times = {name: [] for name in commands}
    for r in range(rounds):
        per = runs // rounds + (1 if r < runs % rounds else 0)
        args = ["hyperfine", "--style", "none", "--export-json", str(out), "--runs", str(per)]
        args += ["--warmup", str(warmup if r == 0 else max(1, warmup // rounds))]
        args += ["-N"] if shell == "none" else ["--shell", shell]
        if prepare:
            args += ["--prepare", prepare]
        order = list(commands.items())
        if r % 2:
            order.reverse()
        for name, cmd in order:
            args += ["-n", name, cmd]
        subprocess.run(args, check=True, capture_output=True)
        for res in json.loads(out.read_text())["results"]:
            times[res["command"]].extend(res["times"])
    return times


def stats(times):
    med = statistics.median(times)
    if len(times) >= 20:
        q = statistics.quantiles(times, n=20)
        return med, (q[0], q[-1])
    return med, (min(times), max(times))


def fmt_ms(s):
    return f"{s * 1000:.2f} ms"


def fmt_s(s):
    return f"{s:.2f} s"


def fmt_mb(b):
    return f"{b / 1e6:.1f} MB"


def row(name, times, unit=fmt_ms, extra=""):
    med, (lo, hi) = stats(times)
    return f"| {name} | {unit(med)} | {unit(lo)} – {unit(hi)} | {len(times)} |{extra}"


def wall(cmd, env=None, cwd=None):
    """Seconds a shell command takes; raises when it fails."""
    t, rc = timed(cmd, env=env, cwd=cwd)
    if rc != 0:
        raise SystemExit(f"failed ({rc}): {cmd}")
    return t


def timed(cmd, env=None, cwd=None, log=None):
    """(seconds, exit code) of a shell command; its output goes to `log` (or nowhere)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    start = time.perf_counter()
    rc = subprocess.run(cmd, shell=True, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL).returncode
    took = time.perf_counter() - start
    if log:
        out.close()
    return took, rc


def parallel_wall(cmds):
    start = time.perf_counter()
    procs = [subprocess.Popen(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"failed: {p.args}")
    return time.perf_counter() - start


def clean_env(work):
    """This process's environment without anything that steers steady or the installers, with
    config and cache homes inside the scratch directory (so no user or machine config applies)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEADY_", "PIP_", "UV_", "npm_config_", "NPM_CONFIG_", "XDG_"))}
    for d in ("xdg-config", "xdg-cache", "xdg-data"):
        (work / d).mkdir(exist_ok=True)
    env.update(
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        XDG_CACHE_HOME=str(work / "xdg-cache"),
        XDG_DATA_HOME=str(work / "xdg-data"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_PYTHON_DOWNLOADS="never",
        npm_config_userconfig=os.devnull,
        npm_config_audit="false",
        npm_config_fund="false",
        npm_config_update_notifier="false",
    )
    return env


# ---------------------------------------------------------------------------------------------
# The local index server.


class Index:
    """bench/index_server.py on 127.0.0.1, throttled; counts the bytes it serves."""

    def __init__(self, root, rate):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "index_server.py"), str(root), "--rate", str(rate)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def reset(self):
        self._get("/__reset")

    def stats(self):
        return self._get("/__stats")

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def site_packages(venv):
    return next(Path(venv).glob("lib/python*/site-packages"))


def broken_installs(venv):
    """Names of installed distributions in venv whose files do not match their RECORD."""
    sp = site_packages(venv)
    bad = []
    for info in sp.glob("*.dist-info"):
        record = info / "RECORD"
        if not record.exists():
            bad.append(info.name)
            continue
        for line in record.read_text().splitlines():
            parts = line.rsplit(",", 2)
            if len(parts) != 3 or not parts[1].startswith("sha256="):
                continue
            f = sp / parts[0]
            try:
                data = f.read_bytes()
            except OSError:
                bad.append(info.name.split("-")[0])
                break
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if "sha256=" + digest != parts[1]:
                bad.append(info.name.split("-")[0])
                break
    return sorted(set(bad))


def npm_digests(tgz):
    """{path under the package: sha256} for every file in an npm tarball."""
    out = {}
    with tarfile.open(tgz) as tf:
        for m in tf.getmembers():
            if m.isfile():
                out[m.name.split("/", 1)[1]] = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
    return out


def copy_tree(src, dst):
    if Path(dst).exists():
        shutil.rmtree(dst)
    subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dst)], check=True)


# ---------------------------------------------------------------------------------------------
# Sections.


def sec_passthrough(ctx, w):
    S, uv, q, work = ctx["S"], ctx["uv"], ctx["quick"], ctx["work"]
    runs = 100 if q else 500
    cmds = {"true": "true", "steady -- true": f"{S} -- true"}
    gnu = ctx["gnu"]
    if gnu:
        cmds["steady (cargo install build) -- true"] = f"{gnu} -- true"
    if uv:
        cmds["uv --version"] = f"{uv} --version"
        cmds["steady -- uv --version"] = f"{S} -- {uv} --version"
    t = hyperfine(cmds, runs, 50, work)
    w("## Pass-through\n")
    w("A command steady does not know, and a read-only installer subcommand, are exec'd at once.")
    w("Target (issue 18): within 1.0 ms of the bare command.\n")
    w(f"`hyperfine -N --runs {runs} --warmup 50 'true' '{{steady}} -- true' 'uv --version' '{{steady}} -- uv --version'`\n")
    w("| command | median | spread | runs |\n|---|---|---|---|")
    for name, times in t.items():
        w(row(name, times))
    d1 = statistics.median(t["steady -- true"]) - statistics.median(t["true"])
    line = f"\nCost of steady: **+{d1 * 1000:.2f} ms** on `true`"
    verdict("pass-through `steady -- true` over `true`", "≤ +1.0 ms", f"+{d1 * 1000:.2f} ms", d1 <= 0.001)
    if uv:
        d2 = statistics.median(t["steady -- uv --version"]) - statistics.median(t["uv --version"])
        line += f", **+{d2 * 1000:.2f} ms** on `uv --version`"
        verdict("pass-through `steady -- uv --version` over `uv --version`", "≤ +1.0 ms", f"+{d2 * 1000:.2f} ms", d2 <= 0.001)
    w(line + ".\n")
    if gnu:
        d3 = statistics.median(t["steady (cargo install build) -- true"]) - statistics.median(t["true"])
        w(f"The dynamically linked build that `cargo install` makes costs **+{d3 * 1000:.2f} ms** on `true`:")
        w("loading the C library and relocating it is most of the difference.\n")
        verdict("pass-through, `cargo install` build, over `true`", "none (figure)", f"+{d3 * 1000:.2f} ms", "n/a")


def sec_locked(ctx, w):
    S, q, work = ctx["S"], ctx["quick"], ctx["work"]
    cache = work / "cache2"
    cache.mkdir(exist_ok=True)
    runs = 100 if q else 300
    cmds = {
        "flock LOCK timeout 60 true": f"flock {work}/lock2 timeout 60 true",
        "steady --cache DIR --timeout 60s -- true": f"{S} --cache {cache} --timeout 60s -- true",
    }
    if ctx["gnu"]:
        cmds["steady (cargo install build) --cache DIR --timeout 60s -- true"] = f"{ctx['gnu']} --cache {cache} --timeout 60s -- true"
    t = hyperfine(cmds, runs, 20, work)
    w("## A locked, supervised run\n")
    w("A trivial command under a lock and a timeout: steady against the field chain of `flock` and")
    w("`timeout`. Target (issue 18): 0.7× the chain or less. `bench/profile.sh` lists the syscalls")
    w("this run makes.\n")
    w(f"`hyperfine -N --runs {runs} --warmup 20 'flock LOCK timeout 60 true' '{{steady}} --cache DIR --timeout 60s -- true'`\n")
    w("| command | median | spread | runs |\n|---|---|---|---|")
    for name, times in t.items():
        w(row(name, times))
    ratio = statistics.median(t["steady --cache DIR --timeout 60s -- true"]) / statistics.median(t["flock LOCK timeout 60 true"])
    w(f"\nsteady / chain: **{ratio:.2f}×**.\n")
    verdict("locked, supervised `true` vs `flock L timeout 60 true`", "≤ 0.7×", f"{ratio:.2f}×", ratio <= 0.7)
    if ctx["gnu"]:
        r2 = statistics.median(t["steady (cargo install build) --cache DIR --timeout 60s -- true"]) / statistics.median(t["flock LOCK timeout 60 true"])
        w(f"The `cargo install` build / chain: {r2:.2f}×.\n")
        verdict("locked, `cargo install` build, vs the chain", "none (figure)", f"{r2:.2f}×", "n/a")


def sec_queue(ctx, w):
    S, q, work = ctx["S"], ctx["quick"], ctx["work"]
    n, reps = 20, (3 if q else 10)
    cache3 = work / "cache3"
    cache3.mkdir(exist_ok=True)
    single = [wall(f"{S} --cache {cache3} --timeout 60s -- sleep 0.01") for _ in range(reps * 2)]
    queued, flocked = [], []
    for _ in range(reps):  # interleaved, so drift in the machine's load hits both sides
        queued.append(parallel_wall([f"{S} --cache {cache3} --timeout 60s -- sleep 0.01"] * n))
        flocked.append(parallel_wall([f"flock {work}/lock3 sleep 0.01"] * n))
    w("## Lock hand-off\n")
    w(f"{n} runs of a 10 ms command started at once on one cache, so they queue on the lock. Target")
    w("(issue 18): 1.05× the same queue under `flock` or less.\n")
    w(f"`{n} × '{{steady}} --cache DIR --timeout 60s -- sleep 0.01'` in parallel, against `{n} × 'flock LOCK sleep 0.01'`\n")
    w("| what | median | spread | runs |\n|---|---|---|---|")
    w(row("one steady run alone", single))
    w(f"| {n} × one run alone (computed) | {fmt_ms(statistics.median(single) * n)} | | |")
    w(row(f"{n} queued steady runs", queued))
    w(row(f"{n} queued flock runs", flocked))
    ratio = statistics.median(queued) / statistics.median(flocked)
    w(f"\nsteady queue / flock queue: **{ratio:.2f}×**; steady queue / {n} × alone: {statistics.median(queued) / (statistics.median(single) * n):.2f}.\n")
    verdict(f"{n} queued runs vs {n} under `flock`", "≤ 1.05×", f"{ratio:.2f}×", ratio <= 1.05)


def sec_throughput(ctx, w):
    S, q, work = ctx["S"], ctx["quick"], ctx["work"]
    size = (256 if q else 1024) * 1024 * 1024
    reps = 3 if q else 5
    gen = f"head -c {size} /dev/zero"
    t = hyperfine(
        {"bare | cat": f"{gen} | cat > /dev/null", "steady | cat": f"{S} --timeout 1h -- {gen} | cat > /dev/null"},
        reps,
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
    w("## Output throughput\n")
    w(f"A command writing {mib:.0f} MiB to a pipe, bare and through steady (which copies it while keeping a")
    w("bounded tail). Target: at least 90 % of bare throughput, steady's peak RSS under 16 MiB.\n")
    w(f"`hyperfine --runs {reps} '{gen} | cat > /dev/null' '{{steady}} --timeout 1h -- {gen} | cat > /dev/null'`; RSS from `/usr/bin/time -f %M`\n")
    w("| what | median | spread | runs | throughput |\n|---|---|---|---|---|")
    for name, times in t.items():
        med, (lo, hi) = stats(times)
        w(f"| {name.replace('|', '&#124;')} | {fmt_s(med)} | {fmt_s(lo)} – {fmt_s(hi)} | {len(times)} | {mib / med:.0f} MiB/s |")
    w(f"\nThroughput through steady / bare: **{bare / through:.2f}**. steady's peak RSS: **{max(rss) / 1024:.1f} MiB** (max of {len(rss)} runs).\n")
    verdict("output throughput, steady / bare", "≥ 0.90", f"{bare / through:.2f}", bare / through >= 0.9)
    verdict("steady's peak RSS while copying output", "< 16 MiB", f"{max(rss) / 1024:.1f} MiB", max(rss) / 1024 < 16)


def sec_hang(ctx, w):
    S, q, work = ctx["S"], ctx["quick"], ctx["work"]
    fixture = work / "hang-once"
    fixture.write_text('#!/bin/sh\nif [ ! -e "$MARK" ]; then touch "$MARK"; exec sleep 3600; fi\nexit 0\n')
    fixture.chmod(0o755)
    reps = 1 if q else 3
    steady_t, field_t = [], []
    for i in range(reps):
        e = dict(os.environ, MARK=str(work / f"m-s{i}"))
        steady_t.append(wall(f"{S} --stall 5s --kill-after 1s --backoff 100ms -- {fixture}", env=e))
        e = dict(os.environ, MARK=str(work / f"m-f{i}"))
        field_t.append(wall(f"timeout 15m sh -c 'until timeout 30s {fixture}; do echo retry; done'", env=e))
    w("## Hang recovery\n")
    w("A command that hangs on its first attempt (no output, no CPU) and succeeds on the second: the")
    w("time to success with steady's stall detection, against the field loop with a 30 s per-attempt timeout.\n")
    w("`{steady} --stall 5s --kill-after 1s --backoff 100ms -- hang-once` against `timeout 15m sh -c 'until timeout 30s hang-once; do echo retry; done'`\n")
    w("| what | median | spread | runs |\n|---|---|---|---|")
    w(row("steady --stall 5s", steady_t, fmt_s))
    w(row("field loop, 30 s timeout", field_t, fmt_s))
    w(f"\nfield loop / steady: **{statistics.median(field_t) / statistics.median(steady_t):.1f}×** faster recovery with steady.\n")


# --- Recovery from a real index ---------------------------------------------------------------


def recovery_setup(ctx):
    """Builds the packages once (wheels and npm tarballs), starts the throttled index."""
    if "index" in ctx:
        return ctx["index"]
    work, q = ctx["work"], ctx["quick"]
    large_n, large_mb, small_n = (2, 20, 10) if q else (3, 40, 30)
    root = work / "index"
    root.mkdir()
    rng = random.Random(18)
    big = [(f"big{i}", large_mb * 1_000_000) for i in range(large_n)]
    small = [(f"small{i:02d}", rng.randint(20_000, 200_000)) for i in range(small_n)]
    pkgs = big + small
    wheels = [fixtures.wheel(work, n, "1.0", size) for n, size in pkgs]
    fixtures.simple_index(root, wheels)
    index = Index(root, ctx["rate"])
    npm_files = {}
    if ctx["npm"]:
        for n, size in pkgs:
            tgz, integrity, shasum = fixtures.npm_tarball(root, n, "1.0.0", size)
            fixtures.npm_packument(root, n, "1.0.0", f"{index.url}/npm-tarballs/{tgz.name}", integrity, shasum)
            npm_files[n] = npm_digests(tgz)
    ctx["index"] = dict(
        server=index,
        root=root,
        pkgs=[n for n, _ in pkgs],
        sizes=dict(pkgs),
        small=[n for n, _ in small],
        broken=big[0][0],
        npm_files=npm_files,
        desc=f"{large_n} wheels of {large_mb} MB and {small_n} of 20–200 kB (random, incompressible payload), served at {ctx['rate']:g} MB/s",
    )
    return ctx["index"]


def recovery_run(ctx, label, sides, prepare, check, reps):
    """Times each side `reps` times, interleaved (the first side alternates). `prepare(i, side)`
    restores the warm cache, breaks the entry and returns (command, env, cwd, target);
    `check(target)` names what is still broken after the run. Returns
    {side: {"t": [...], "bytes": [...], "rc": [...], "broken": [...]}}."""
    idx, work = ctx["index"], ctx["work"]
    res = {s: {"t": [], "bytes": [], "rc": [], "broken": []} for s in sides}
    log = work / f"{label}.log"
    for i in range(reps):
        order = sides if i % 2 == 0 else list(reversed(sides))
        for side in order:
            cmd, env, cwd, target = prepare(i, side)
            with open(log, "a") as f:
                f.write(f"\n=== {label} rep {i} side {side}: {cmd}\n")
            idx["server"].reset()
            t, rc = timed(cmd, env=env, cwd=cwd, log=log)
            st = idx["server"].stats()
            r = res[side]
            r["t"].append(t)
            r["bytes"].append(st["bytes"])
            r["rc"].append(rc)
            r["broken"].append(check(target) if rc == 0 else ["(install failed)"])
    return res


def recovery_table(w, res, full_bytes):
    w("| what | median time | spread | runs | bytes re-downloaded (median) | exit codes | result |")
    w("|---|---|---|---|---|---|---|")
    for side, r in res.items():
        med, (lo, hi) = stats(r["t"])
        broken = [b for b in r["broken"] if b]
        result = "healed in every run" if not broken else f"**not healed** in {len(broken)} of {len(r['broken'])} ({', '.join(sorted(set(x for b in broken for x in b)))})"
        w(
            f"| {side} | {fmt_s(med)} | {fmt_s(lo)} – {fmt_s(hi)} | {len(r['t'])} | {fmt_mb(statistics.median(r['bytes']))} "
            f"({statistics.median(r['bytes']) / full_bytes * 100:.0f} % of all packages) | {' '.join(map(str, sorted(set(r['rc']))))} | {result} |"
        )


def all_healed(r):
    return all(not b for b in r["broken"])


def sec_recovery(ctx, w):
    S, uv, pip, npm, q, work = ctx["S"], ctx["uv"], ctx["pip"], ctx["npm"], ctx["quick"], ctx["work"]
    w("## Recovery from one broken cache entry, real index over HTTP\n")
    if not (uv or pip or npm):
        w("Not measured: none of uv, pip, npm is installed.\n")
        return
    idx = recovery_setup(ctx)
    reps = 2 if q else 5
    pkgs, broken, url = idx["pkgs"], idx["broken"], idx["server"].url
    full_bytes = sum(idx["sizes"].values())
    w(f"A local index on 127.0.0.1 (`bench/index_server.py`: a PEP 503 simple index with PEP 658")
    w(f"metadata, and an npm registry) holds {idx['desc']}; the link is shared by all connections,")
    w("and the server counts every byte it sends. Each run starts from the same warm cache (copied")
    w(f"back from a snapshot), breaks one entry (`{broken}`, a **large** package, the case least")
    w("favourable to a targeted clean; for uv also a small one), then installs all of them into a fresh target.")
    w("The sides of each installer alternate which goes first. After each run the installed files")
    w("are checked against the package's own hashes (RECORD for wheels, the tarball for npm):")
    w("\"not healed\" means the install exited 0 with files missing or wrong.\n")
    env0 = clean_env(work)

    # --- uv
    if uv:
        cache, snap = work / "uv-cache", work / "uv-cache.warm"
        env = dict(env0, UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1")
        base = f"pip install -q --index-url {url}/simple " + " ".join(pkgs)
        warm = work / "uv-warm"
        subprocess.run(f"{uv} venv -q --python python3 {warm} && {uv} {base} --python {warm}/bin/python", shell=True, check=True, env=env)
        copy_tree(cache, snap)
        sides = {
            "steady (targeted clean, retry)": lambda v: f"{S} --backoff 10ms -- {uv} {base} --python {v}/bin/python",
            "`uv cache clean` + install": lambda v: f"{uv} cache clean -q && {uv} {base} --python {v}/bin/python",
            "bare `uv pip install` (no clean)": lambda v: f"{uv} {base} --python {v}/bin/python",
        }

        def breaker(mode, broken):
            def prepare(i, side):
                copy_tree(snap, cache)
                entry = next((cache / "archive-v0").glob(f"*/{broken}-1.0.dist-info")).parent
                if mode == "half":
                    # A `uv cache clean` or tmp cleaner stopped part way: half the package's
                    # files (listed in RECORD) gone, METADATA and RECORD still there.
                    for f in sorted((entry / broken / "payload").iterdir())[::2]:
                        f.unlink()
                else:
                    (entry / f"{broken}-1.0.dist-info" / "METADATA").unlink()
                v = work / f"uv-v-{mode}-{broken}-{i}-{list(sides).index(side)}"
                subprocess.run(f"{uv} venv -q --python python3 {v}", shell=True, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                return sides[side](v), env, None, v
            return prepare

        small = idx["small"][0]
        for mode, pkg, what in (
            ("half", broken, f"`{broken}` (large) half-deleted: half its files gone, `METADATA` and `RECORD` kept (a clean or tmp cleaner stopped part way)"),
            ("metadata", broken, f"`{broken}` (large) lost its `METADATA` (uv reports this one: `Failed to install … METADATA: No such file or directory`)"),
            ("metadata", small, f"`{small}` (small) lost its `METADATA`: the case a targeted clean is for"),
        ):
            res = recovery_run(ctx, f"uv-{mode}-{pkg}", list(sides), breaker(mode, pkg), broken_installs, reps)
            w(f"### uv: {what}\n")
            w(f"`{{steady}} --backoff 10ms -- uv pip install --index-url URL {' '.join(pkgs[:2])} …` against `uv cache clean && uv pip install …`\n")
            recovery_table(w, res, full_bytes)
            st, fu = res["steady (targeted clean, retry)"], res["`uv cache clean` + install"]
            ratio = statistics.median(fu["t"]) / statistics.median(st["t"])
            name = f"uv, one broken {'large' if pkg == broken else 'small'} entry ({'half-deleted' if mode == 'half' else 'METADATA gone'}): full clean / steady"
            if all_healed(st):
                w(f"\nfull clean + install / steady: **{ratio:.2f}×** the time, {fmt_mb(statistics.median(fu['bytes']))} against {fmt_mb(statistics.median(st['bytes']))} downloaded.\n")
                verdict(name, "≥ 3× faster", f"{ratio:.2f}×", ratio >= 3)
            else:
                w(f"\nsteady did not heal this breakage (the install exited 0 with the package incomplete), so its time is not a recovery time; the full clean took {fmt_s(statistics.median(fu['t']))}.\n")
                verdict(name, "≥ 3× faster", "not healed", False)
        shutil.rmtree(cache, ignore_errors=True)

    for tool, have in (("uv", uv), ("pip", pip), ("npm", npm)):
        if not have:
            w(f"{tool}: **not measured**, `{tool}` is not on PATH.\n")

    # --- pip
    if pip:
        cache, snap = work / "pip-cache", work / "pip-cache.warm"
        env = dict(env0, PIP_CACHE_DIR=str(cache))
        # pip keeps an HTTP cache only for HTTPS and trusted hosts: a plain-HTTP index needs
        # --trusted-host, or nothing is cached at all.
        base = f"install -q --trusted-host 127.0.0.1 --index-url {url}/simple " + " ".join(pkgs)
        venv_cmd = f"{uv} venv -q --python python3" if uv else "python3 -m venv --without-pip"
        warm = work / "pip-warm"
        subprocess.run(f"{venv_cmd} {warm} && {pip} --python {warm}/bin/python {base}", shell=True, check=True, env=env)
        copy_tree(cache, snap)
        size = idx["sizes"][broken]
        sides = {
            "steady (clean, retry)": lambda v: f"{S} --backoff 10ms -- {pip} --python {v}/bin/python {base}",
            "`pip cache purge` + install": lambda v: f"{pip} cache purge -q && {pip} --python {v}/bin/python {base}",
            "bare `pip install` (no clean)": lambda v: f"{pip} --python {v}/bin/python {base}",
        }
        wheel_size = (idx["root"] / "files" / f"{broken}-1.0-py3-none-any.whl").stat().st_size

        def prepare(i, side):
            copy_tree(snap, cache)
            body = next(f for f in cache.rglob("*.body") if f.stat().st_size == wheel_size)
            # Written half way, the rest never reached the disk (zeros after a crash). A
            # truncated body is not a failure: pip resumes the download by itself.
            with open(body, "r+b") as f:
                f.seek(wheel_size // 2)
                f.write(b"\0" * (wheel_size - wheel_size // 2))
            v = work / f"pip-v-{i}-{list(sides).index(side)}"
            subprocess.run(f"{venv_cmd} {v}", shell=True, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return sides[side](v), env, None, v

        res = recovery_run(ctx, "pip", list(sides), prepare, broken_installs, reps)
        shutil.rmtree(cache, ignore_errors=True)
        w("### pip: a downloaded wheel's HTTP-cache body half zeroed\n")
        w(f"`{{steady}} --backoff 10ms -- pip install --trusted-host 127.0.0.1 --index-url URL …` against `pip cache purge && pip install …`\n")
        recovery_table(w, res, full_bytes)
        st, fu = res["steady (clean, retry)"], res["`pip cache purge` + install"]
        ratio = statistics.median(fu["t"]) / statistics.median(st["t"])
        w(f"\nfull clean + install / steady: **{ratio:.2f}×**. pip has **no targeted clean for downloaded wheels**:")
        w("`pip cache remove` only touches wheels pip built itself, and pip's hash error does not name the")
        w("package, so steady falls back to `pip cache purge`, as a user would. Equal bytes are expected.\n")
        verdict("pip, one broken HTTP-cache entry: full clean / steady", "no target (no targeted clean exists)", f"{ratio:.2f}×", "n/a")

    # --- npm
    if npm:
        cache, snap = work / "npm-cache", work / "npm-cache.warm"
        proj = work / "npm-project"
        proj.mkdir()
        (proj / "package.json").write_text(json.dumps({"name": "bench", "version": "1.0.0", "private": True, "dependencies": {n: "1.0.0" for n in pkgs}}))
        env = dict(env0, npm_config_cache=str(cache), npm_config_registry=f"{url}/npm/")
        base = "install --no-package-lock --loglevel=error"
        subprocess.run(f"{npm} {base}", shell=True, check=True, env=env, cwd=proj, stdout=subprocess.DEVNULL)
        copy_tree(cache, snap)
        sides = {
            "steady": f"{S} --backoff 10ms -- {npm} {base}",
            "`npm cache clean --force` + install": f"{npm} cache clean --force && {npm} {base}",
            "bare `npm install` (no clean)": f"{npm} {base}",
        }
        tgz = (idx["root"] / "npm-tarballs" / f"{broken}-1.0.0.tgz").read_bytes()
        want = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        content = None

        def prepare(i, side):
            nonlocal content
            copy_tree(snap, cache)
            shutil.rmtree(proj / "node_modules", ignore_errors=True)
            if content is None:
                hexd = base64.b64decode(want[7:]).hex()
                content = Path("content-v2/sha512") / hexd[:2] / hexd[2:4] / hexd[4:]
            with open(cache / "_cacache" / content, "r+b") as f:
                f.seek(len(tgz) // 2)
                f.write(b"\0" * 100_000)
            return sides[side], env, proj, proj

        def check(p):
            bad = []
            for n, files in idx["npm_files"].items():
                for rel, digest in files.items():
                    if rel == "package.json":  # npm may rewrite it on install
                        continue
                    f = p / "node_modules" / n / rel
                    if not f.exists() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                        bad.append(n)
                        break
            return bad

        res = recovery_run(ctx, "npm", list(sides), prepare, check, reps)
        w("### npm: a cached tarball with 100 kB zeroed in the middle\n")
        w(f"`{{steady}} --backoff 10ms -- npm install` against `npm cache clean --force && npm install`\n")
        recovery_table(w, res, full_bytes)
        st, fu = res["steady"], res["`npm cache clean --force` + install"]
        ratio = statistics.median(fu["t"]) / statistics.median(st["t"])
        w(f"\nfull clean + install / steady: **{ratio:.2f}×**. npm heals this by itself (cacache treats an")
        w("integrity mismatch as a cache miss and fetches that one tarball again), so steady has nothing")
        w("to clean and matches bare `npm install`; a targeted clean exists (`npm cache clean <key>`) but")
        w("is not needed here. The gain is only over the full clean users run by habit.\n")
        verdict("npm, one broken tarball: full clean / steady", "no target (npm self-heals)", f"{ratio:.2f}×", "n/a")


# --- Overhead on a real install --------------------------------------------------------------


def sec_overhead(ctx, w):
    S, uv, q, work = ctx["S"], ctx["uv"], ctx["quick"], ctx["work"]
    w("## Overhead on a real uv install\n")
    if not uv:
        w("Not measured: uv is not installed.\n")
        return
    idx = recovery_setup(ctx)
    small = idx["small"][:5]
    url = idx["server"].url
    env = clean_env(work)
    # No UV_CACHE_DIR: the cache is uv's default under XDG_CACHE_HOME, so steady finds it the
    # way it does for a user (its cache lookup is part of the figure).
    args = f"pip install -q --index-url {url}/simple " + " ".join(small)
    v = work / "ov-noop"
    subprocess.run(f"{uv} venv -q --python python3 {v} && {uv} {args} --python {v}/bin/python", shell=True, check=True, env=env)
    runs = 30 if q else 200
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        noop = hyperfine(
            {"uv pip install (no-op)": f"{uv} {args} --python {v}/bin/python", "steady -- uv pip install (no-op)": f"{S} -- {uv} {args} --python {v}/bin/python"},
            runs,
            5,
            work,
        )
        v2 = work / "ov-real"
        runs2 = 10 if q else 50
        real = hyperfine(
            {"uv pip install (5 packages)": f"{uv} {args} --python {v2}/bin/python", "steady -- uv pip install (5 packages)": f"{S} -- {uv} {args} --python {v2}/bin/python"},
            runs2,
            2,
            work,
            shell="sh",
            prepare=f"rm -rf {v2} && {uv} venv -q --python python3 {v2}",
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    w("Side by side on work a user recognises: an install where everything is already satisfied")
    w("(no-op), and 5 small packages from a warm cache into a fresh venv (made by hyperfine's")
    w("`--prepare`, not timed). Through steady this includes finding the cache and taking the lock.")
    w("No target was set; the figure is the cost.\n")
    w(f"`hyperfine -N --runs {runs} 'uv pip install --index-url URL {' '.join(small)} --python V' '{{steady}} -- uv pip install …'`;")
    w(f"`hyperfine --runs {runs2} --prepare 'rm -rf V2 && uv venv V2' 'uv pip install … --python V2' '{{steady}} -- uv pip install … --python V2'`\n")
    w("| command | median | spread | runs |\n|---|---|---|---|")
    for t in (noop, real):
        for name, times in t.items():
            w(row(name, times))
    for label, t in (("no-op", noop), ("5 packages", real)):
        names = list(t)
        d = statistics.median(t[names[1]]) - statistics.median(t[names[0]])
        r = statistics.median(t[names[1]]) / statistics.median(t[names[0]])
        w(f"\nCost of steady on the {label} install: **{d * 1000:+.2f} ms** ({r:.2f}×).")
        verdict(f"steady on a real `uv pip install` ({label})", "no target set", f"{d * 1000:+.2f} ms ({r:.2f}×)", "n/a")
    w("")


# --- Scale of the supervision ----------------------------------------------------------------

TREE_SH = """#!/bin/sh
# usage: tree.sh N SECONDS: N processes in all (this shell, 9 subshells, the rest sleeps) that
# live SECONDS, silent and idle.
n=$1; secs=$2; groups=9
per=$(( (n - 1 - groups) / groups ))
g=0
while [ $g -lt $groups ]; do
    ( i=0; while [ $i -lt $per ]; do sleep "$secs" & i=$((i + 1)); done; wait ) &
    g=$((g + 1))
done
wait
"""


def tagged(token, exclude=()):
    """Pids of live (not zombie) processes whose environment carries BENCH_TREE=token, less
    `exclude` (the supervisor, which carries it too)."""
    needle = f"BENCH_TREE={token}".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        try:
            if needle not in Path(f"/proc/{d}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in "ZX":
            out.append(int(d))
    return out


def alive_pid(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def proc_cpu(pid):
    """(self, children) CPU seconds (utime+stime, cutime+cstime) from /proc/<pid>/stat."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    # After ")": state is index 0, so utime (field 14) is index 11.
    return (int(f[11]) + int(f[12])) / tck, (int(f[13]) + int(f[14])) / tck


def supervise(cmd, env, secs, sample=1.0):
    """Runs cmd; samples its own CPU each `sample` s; returns (self CPU s, children CPU s,
    per-interval CPU fractions, wall s). The last reading is taken from the zombie, before it is
    reaped, so the figure covers all of the process's life and none of its children's."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last, last_t, fractions = 0.0, start, []
    while True:
        try:
            res = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:
            res = None
        now = time.perf_counter()
        mine, kids = proc_cpu(p.pid)
        if now - last_t >= sample or res is not None:
            if now > last_t:
                fractions.append((mine - last) / (now - last_t))
            last, last_t = mine, now
        if res is not None:
            break
        time.sleep(0.05)
    wall_s = time.perf_counter() - start
    p.wait()
    return mine, kids, fractions, wall_s


def sec_scale(ctx, w):
    S, work, secs, n = ctx["S"], ctx["work"], ctx["supervise_secs"], ctx["tree_size"]
    q = ctx["quick"]
    tree = work / "tree.sh"
    tree.write_text(TREE_SH)
    tree.chmod(0o755)
    w("## Scale of the supervision\n")
    w(f"A tree of {n} processes (a shell, 9 subshells, sleeps), silent and idle, for {secs} s. steady")
    w(f"supervises it with stall detection on (`--stall {secs + 60}s`, longer than the run, so it samples")
    w("the silent tree every 2 s, its CPU and the bytes each process read and wrote, and never fires);")
    w("the baseline is coreutils `timeout`, which only")
    w("waits. CPU is utime+stime of the supervisor process alone (`/proc/<pid>/stat` fields 14–15,")
    w("read from the zombie before it is reaped, so none of the tree's CPU is in it).\n")
    rows = []
    for name, cmd in (
        (f"steady --stall {secs + 60}s --timeout {secs + 120}s", [str(S), "--stall", f"{secs + 60}s", "--timeout", f"{secs + 120}s", "--retries", "0", "--", str(tree), str(n), str(secs)]),
        (f"timeout {secs + 120}", ["timeout", str(secs + 120), str(tree), str(n), str(secs)]),
    ):
        token = f"{name.split()[0]}-{os.getpid()}-{time.time_ns()}"
        env = dict(clean_env(work), BENCH_TREE=token)
        mine, kids, fr, wall_s = supervise(cmd, env, secs)
        rows.append((name, mine, kids, fr, wall_s))
    w(f"`{{steady}} --stall {secs + 60}s --timeout {secs + 120}s --retries 0 -- tree.sh {n} {secs}` against `timeout {secs + 120} tree.sh {n} {secs}`\n")
    w("| supervisor | its CPU, total | per second of wall time (median) | spread (per 1 s sample) | samples | the tree's CPU | wall |")
    w("|---|---|---|---|---|---|---|")
    for name, mine, kids, fr, wall_s in rows:
        med, (lo, hi) = stats(fr)
        w(f"| {name} | {mine * 1000:.0f} ms | {med * 1000:.1f} ms/s ({med * 100:.2f} % of a core) | {lo * 1000:.1f} – {hi * 1000:.1f} ms/s | {len(fr)} | {kids:.2f} s | {wall_s:.1f} s |")
    st = rows[0]
    w(f"\nsteady's own CPU while supervising {n} processes: **{st[1] / st[4] * 100:.2f} % of one core** ({st[1] * 1000:.0f} ms over {st[4]:.1f} s). CPU is counted in clock ticks of 10 ms, so totals under ~100 ms are coarse.\n")
    verdict(f"steady's CPU supervising {n} processes with `--stall`", "no target set", f"{st[1] / st[4] * 100:.2f} % of a core", "n/a")

    # Time from a timeout to an empty tree.
    tmo = 8
    reps = 1 if q else 3
    res = {}
    for name, mk in (
        (f"steady --timeout {tmo}s --kill-after 1s", lambda: [str(S), "--timeout", f"{tmo}s", "--kill-after", "1s", "--stall", "0", "--retries", "0", "--", str(tree), str(n), "3600"]),
        (f"timeout -k 1 {tmo}", lambda: ["timeout", "-k", "1", str(tmo), str(tree), str(n), "3600"]),
    ):
        res[name] = {"empty": [], "exit": [], "alive": [], "scan": []}
        for i in range(reps):
            token = f"tmo-{i}-{os.getpid()}-{time.time_ns()}"
            env = dict(clean_env(work), BENCH_TREE=token)
            t0 = time.perf_counter()
            p = subprocess.Popen(mk(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(tmo - 0.5)
            # The tree is complete by now and spawns nothing more: from here on only its pids
            # are polled, which is far quicker than scanning every process's environment.
            pids = sorted(tagged(token, (p.pid,)), reverse=True)  # the sleeps, newest first
            alive = len(pids)
            deadline = t0 + tmo + 30
            exited = None
            while time.perf_counter() < deadline:
                if exited is None and p.poll() is not None:
                    exited = time.perf_counter()
                if time.perf_counter() > t0 + tmo:
                    s0 = time.perf_counter()
                    # Drop the dead from the front; stop at the first one alive.
                    while pids and not alive_pid(pids[0]):
                        pids.pop(0)
                    live = pids
                    res[name]["scan"].append(time.perf_counter() - s0)
                    if not live:
                        break
                time.sleep(0.01)
            empty = time.perf_counter()
            if exited is None:
                p.wait(timeout=60)
                exited = time.perf_counter()
            left = tagged(token, (p.pid,))
            for pid in left:  # never leave the tree behind, whatever the supervisor did
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            res[name]["empty"].append(empty - (t0 + tmo) if not left else float("nan"))
            res[name]["exit"].append(exited - (t0 + tmo))
            res[name]["alive"].append(alive)
    w(f"### From a timeout to an empty tree, {n} processes\n")
    w(f"The same tree, sleeping for an hour, under a {tmo} s timeout. \"Empty\" is the first moment no")
    scans = [x for r in res.values() for x in r["scan"]]
    w("process of the tree is alive (zombies not counted): the tree's pids, taken 0.5 s before the")
    w("timeout, are polled through `/proc/<pid>/stat` every 10 ms (dropping the dead, stopping at the")
    w(f"first one alive); one poll took {fmt_ms(statistics.median(scans)) if scans else '?'} (median), the resolution of these figures. Both clocks")
    w("start when the supervisor is spawned, so its own start-up is in the figure.\n")
    w(f"`{{steady}} --timeout {tmo}s --kill-after 1s --stall 0 --retries 0 -- tree.sh {n} 3600` against `timeout -k 1 {tmo} tree.sh {n} 3600`\n")
    w("| supervisor | timeout → empty tree (median) | spread | timeout → supervisor exits (median) | runs | processes alive just before the timeout |")
    w("|---|---|---|---|---|---|")
    for name, r in res.items():
        e = [x for x in r["empty"] if x == x]
        if e:
            med, (lo, hi) = stats(e)
            w(f"| {name} | {fmt_ms(med)} | {fmt_ms(lo)} – {fmt_ms(hi)} | {fmt_ms(statistics.median(r['exit']))} | {len(e)} | {', '.join(map(str, r['alive']))} |")
        else:
            w(f"| {name} | **never empty** within 30 s | | {fmt_ms(statistics.median(r['exit']))} | {len(r['empty'])} | {', '.join(map(str, r['alive']))} |")
    st = list(res.values())[0]
    e = [x for x in st["empty"] if x == x]
    verdict(f"timeout → empty tree, {n} processes", "no target set", fmt_ms(statistics.median(e)) if e else "never empty", "n/a" if e else False)
    w("")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and 10 s of supervision, for a smoke run")
    ap.add_argument("--only", help="comma-separated sections to run: " + ",".join(SECTIONS))
    ap.add_argument("--out", help="where to write (default BENCHMARKS.md; target/BENCHMARKS.quick.md with --quick or --only)")
    ap.add_argument("--supervise-secs", type=int, help="how long the supervised tree lives (default 60; 10 with --quick)")
    ap.add_argument("--tree-size", type=int, default=1000, help="processes in the supervised tree (default 1000)")
    ap.add_argument("--rate", type=float, default=20.0, help="the index's link rate in MB/s (default 20)")
    opts = ap.parse_args()
    only = SECTIONS if not opts.only else opts.only.split(",")
    for s in only:
        if s not in SECTIONS:
            raise SystemExit(f"unknown section {s!r}; sections: {', '.join(SECTIONS)}")
    partial = opts.quick or only != SECTIONS
    out = Path(opts.out) if opts.out else (ROOT / "target" / "BENCHMARKS.quick.md" if partial else ROOT / "BENCHMARKS.md")
    if not STEADY.exists():
        raise SystemExit("build first: cargo build --release")
    # The build that bench/run.sh just ran, or anything else, must not weigh on the first rows.
    settle_until = time.monotonic() + 120
    while os.getloadavg()[0] > 1.0 and time.monotonic() < settle_until:
        time.sleep(5)
    load_at_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="steady-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADY_")}
    os.environ.clear()
    os.environ.update(env)
    S = str(STEADY)
    ctx = dict(
        S=S,
        gnu=str(GNU_BUILD) if STEADY != GNU_BUILD and GNU_BUILD.exists() else None,
        quick=opts.quick,
        work=work,
        uv=shutil.which("uv"),
        pip=shutil.which("pip"),
        npm=shutil.which("npm"),
        rate=opts.rate,
        supervise_secs=opts.supervise_secs or (10 if opts.quick else 60),
        tree_size=opts.tree_size,
    )
    body = []
    try:
        for s in only:
            print(f"bench: {s}", file=sys.stderr, flush=True)
            globals()[f"sec_{s}"](ctx, body.append)
    finally:
        if "index" in ctx:
            ctx["index"]["server"].stop()

    md = []
    w = md.append
    w("# Benchmarks\n")
    w("Produced by `bench/run.sh` (which builds the release binary, brings the tools and runs")
    w("`bench/run.py`). Every figure stands beside its baseline, measured in the same run on the same")
    w(f"machine; hyperfine rows are taken in up to {ROUNDS} rounds that alternate the commands, so that")
    w("the machine's drift hits both sides. Medians; the spread is the 5th–95th percentile where")
    w("there are 20 or more runs, else min – max.\n")
    if opts.quick:
        w("**Quick run (`--quick`): few repetitions, noisy; a smoke test of the scripts, not a measurement.**\n")
    if only != SECTIONS:
        w(f"Sections run: {', '.join(only)}.\n")
    w("| machine | |\n|---|---|")
    w(f"| cores | {os.cpu_count()} |")
    w(f"| load average at the start | {load_at_start:.2f} (1 min; waited up to 2 min for it to fall below 1.0) |")
    w(f"| kernel | {platform.release()} |")
    kind = "static (musl) release build, as shipped" if STEADY == STATIC_BUILD else "release build (gnu, dynamically linked: the static one was not built)"
    w(f"| steady | {sh(f'{S} --version')}: {kind} |")
    w(f"| hyperfine | {sh('hyperfine --version')} |")
    w(f"| uv | {sh(ctx['uv'] + ' --version') if ctx['uv'] else 'not installed'} |")
    w(f"| pip | {sh(ctx['pip'] + ' --version').split(' from ')[0] if ctx['pip'] else 'not installed'} |")
    w(f"| npm | {sh(ctx['npm'] + ' --version') + ' (node ' + sh('node --version') + ')' if ctx['npm'] else 'not installed'} |")
    w(f"| date | {time.strftime('%Y-%m-%d')} |\n")
    w("## Targets\n")
    w("| figure | target | this run | |\n|---|---|---|---|")
    for fig, target, value, met in VERDICTS:
        w(f"| {fig} | {target} | {value} | {'**' + met + '**' if met == 'not met' else met} |")
    w("")
    md.extend(body)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
