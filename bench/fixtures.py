"""Builds the packages the recovery benchmarks serve: wheels and npm tarballs with random,
incompressible payload, a PEP 503 simple index over them, and npm packuments. No network.

Sizes are real bytes on the wire: the payload is os.urandom, stored uncompressed, so a 40 MB
wheel costs 40 MB to download at any compression setting.
"""
import base64
import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

PAYLOAD_FILES = 8


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _payload(size, nfiles):
    """`nfiles` random blobs adding up to `size` bytes (at least one byte each)."""
    size = max(size, nfiles)
    base = size // nfiles
    return [os.urandom(base + (1 if i < size % nfiles else 0)) for i in range(nfiles)]


def wheel(out, name, version, size):
    """Writes out/NAME-VERSION-py3-none-any.whl: a module NAME with `size` bytes of random
    payload in PAYLOAD_FILES files (so part of an unpacked entry can go missing), and a
    dist-info as the wheel spec asks. Returns the path."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'VERSION = "{version}"\n'.encode(),
    }
    for i, blob in enumerate(_payload(size, PAYLOAD_FILES)):
        files[f"{name}/payload/blob{i}.bin"] = blob
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: steady-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = Path(out) / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return target


def simple_index(root, wheels):
    """A PEP 503 tree under root: simple/index.html, simple/<name>/index.html linking to
    ../../files/<wheel>#sha256=…, and the wheels themselves under files/."""
    root = Path(root)
    (root / "files").mkdir(parents=True, exist_ok=True)
    names = []
    for w in wheels:
        w = Path(w)
        dest = root / "files" / w.name
        if w != dest:
            w.replace(dest)
        name = w.name.split("-")[0].replace("_", "-").lower()
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        # PEP 658: the wheel's METADATA beside it, as PyPI serves it, so resolvers read the
        # metadata without fetching (or range-requesting) the wheel.
        with zipfile.ZipFile(dest) as zf:
            meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))
        (root / "files" / (dest.name + ".metadata")).write_bytes(meta)
        mdigest = hashlib.sha256(meta).hexdigest()
        d = root / "simple" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "index.html").write_text(
            f'<!DOCTYPE html><html><body><a href="../../files/{dest.name}#sha256={digest}" '
            f'data-core-metadata="sha256={mdigest}" data-dist-info-metadata="sha256={mdigest}">{dest.name}</a>'
            "</body></html>\n"
        )
        names.append(name)
    (root / "simple" / "index.html").write_text(
        "<!DOCTYPE html><html><body>" + "".join(f'<a href="{n}/">{n}</a>' for n in sorted(names)) + "</body></html>\n"
    )


def npm_tarball(root, name, version, size):
    """Writes root/npm-tarballs/NAME-VERSION.tgz (package/package.json plus random payload)
    and returns (path, integrity, shasum) for its packument."""
    d = Path(root) / "npm-tarballs"
    d.mkdir(parents=True, exist_ok=True)
    target = d / f"{name}-{version}.tgz"
    manifest = json.dumps({"name": name, "version": version, "main": "index.js"}).encode()
    files = {"package/package.json": manifest, "package/index.js": b"module.exports = 42;\n"}
    for i, blob in enumerate(_payload(size, PAYLOAD_FILES)):
        files[f"package/payload/blob{i}.bin"] = blob
    # Random payload does not compress: level 1 keeps the build quick.
    with tarfile.open(target, "w:gz", compresslevel=1) as tf:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    data = target.read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    return target, integrity, hashlib.sha1(data).hexdigest()


def npm_packument(root, name, version, tarball_url, integrity, shasum):
    """Writes root/npm/NAME, the registry document npm asks for."""
    d = Path(root) / "npm"
    d.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {
            version: {
                "name": name,
                "version": version,
                "main": "index.js",
                "dist": {"tarball": tarball_url, "integrity": integrity, "shasum": shasum},
            }
        },
    }
    (d / name).write_text(json.dumps(doc))
