"""A package index for the benchmarks: serves DIR over HTTP on 127.0.0.1 only, throttled to a
shared link rate, and counts the body bytes it sends.

usage: index_server.py DIR [--rate MBPS]

Prints the port on its first line and exits when its stdin closes, so a benchmark that dies
leaves no server behind. DIR holds a PEP 503 tree (`simple/<name>/index.html` with links to
`files/<wheel>`) and an npm registry (`npm/<name>` packuments, `npm-tarballs/<name>.tgz`).

The rate (MB/s, 10^6 bytes; 0 = unthrottled) is one link shared by every connection, as a real
uplink is: each 64 KiB chunk waits for its slot on a common schedule.

Control paths, not counted: `GET /__stats` answers {"bytes": N, "requests": N, "files": {path:
bytes}}; `GET /__reset` zeroes the counters.
"""
import argparse
import http.server
import json
import os
import sys
import threading
import time

CHUNK = 64 * 1024


class Link:
    """A shared link: each chunk reserves its transmission slot on one schedule."""

    def __init__(self, rate):
        self.rate = rate * 1_000_000
        self.lock = threading.Lock()
        self.free_at = 0.0
        self.bytes = 0
        self.requests = 0
        self.files = {}

    def send(self, path, n):
        with self.lock:
            self.bytes += n
            self.files[path] = self.files.get(path, 0) + n
            if not self.rate:
                return
            now = time.monotonic()
            # Up to 50 ms of credit, so oversleeping does not slow the link below its rate.
            start = max(now - 0.05, self.free_at)
            self.free_at = start + n / self.rate
            wait = self.free_at - now
        if wait > 0:
            time.sleep(wait)

    def stats(self):
        with self.lock:
            return {"bytes": self.bytes, "requests": self.requests, "files": dict(self.files)}

    def reset(self):
        with self.lock:
            self.bytes, self.requests, self.files = 0, 0, {}


def handler_for(root, link):
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=root, **kw)

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/__"):
                if self.path == "/__reset":
                    link.reset()
                body = json.dumps(link.stats()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            with link.lock:
                link.requests += 1
            super().do_GET()

        def end_headers(self):
            # As PyPI and the npm registry answer: files are immutable, index pages short-lived.
            # Without this pip's HTTP cache (cachecontrol) stores nothing.
            if self.path.startswith(("/files/", "/npm-tarballs/")):
                self.send_header("Cache-Control", "max-age=365000000, immutable, public")
            elif self.path.startswith(("/simple/", "/npm/")):
                self.send_header("Cache-Control", "max-age=600, public")
            super().end_headers()

        def guess_type(self, path):
            # npm packuments are files without an extension.
            if os.sep + "npm" + os.sep in path and "." not in os.path.basename(path):
                return "application/json"
            return super().guess_type(path)

        def copyfile(self, source, outputfile):
            path = self.path.split("?", 1)[0]
            while True:
                buf = source.read(CHUNK)
                if not buf:
                    break
                link.send(path, len(buf))
                outputfile.write(buf)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--rate", type=float, default=20.0, help="MB/s shared by all connections; 0 = unthrottled")
    opts = ap.parse_args()
    link = Link(opts.rate)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(os.path.abspath(opts.root), link))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)

    def watch():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
