"""Connection hardening figures for `doorward serve` (issue 17), on loopback only.

    python3 bench/transport.py slow-headers BIN   # N=200 connections, each an unfinished
                                                  # HEAD_KB=400 KiB header; RSS and connections
                                                  # the server holds at +60 s
    python3 bench/transport.py idle BIN           # under `prlimit --nofile=256`: 300 idle
                                                  # connections, then a normal request (30 s)

BIN is a `doorward` binary (release for figures). Each run starts its own server on a
temporary SQLite database and stops it; connections are bounded in count and time.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def start(binary, prefix=()):
    work = tempfile.mkdtemp(prefix="doorward-transport-")
    with open(f"{work}/d.toml", "w") as f:
        f.write('[keys]\nalgorithms = ["ES256"]\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*prefix, binary, "serve", "-c", f"{work}/d.toml", "--listen",
                             f"127.0.0.1:{port}"], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "listening on" in line:
            break
    return proc, port


def rss(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        return next(l.split()[1] for l in f if l.startswith("VmRSS")) + " kB"


def established(port):
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return sum(1 for l in out.splitlines() if l.strip())


def answers(port, timeout):
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
        status = urllib.request.urlopen(url, timeout=timeout).status
        return f"{status} after {time.monotonic() - started:.1f} s"
    except Exception as e:
        return f"no answer ({e}) after {time.monotonic() - started:.1f} s"


def slow_headers(binary):
    n = int(os.environ.get("N", "200"))
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (int(os.environ.get("HEAD_KB", "400")) * 1024)
    proc, port = start(binary)
    print(f"idle: RSS {rss(proc)}")
    socks, threads = [], []
    started = time.monotonic()
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        socks.append(sock)
        t = threading.Thread(target=lambda s=sock: _send(s, head), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=5)
    print(f"sent: RSS {rss(proc)}, connections held {established(port)}")
    time.sleep(max(0.0, 60 - (time.monotonic() - started)))
    print(f"+60 s: RSS {rss(proc)}, connections held {established(port)}; "
          f"a normal request: {answers(port, 10)}")
    for sock in socks:
        sock.close()
    proc.terminate()
    proc.wait()


def _send(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


def idle(binary):
    proc, port = start(binary, prefix=("prlimit", "--nofile=256"))
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    print(f"300 idle connections; server file descriptors {len(os.listdir(f'/proc/{proc.pid}/fd'))}")
    print(f"a normal request: {answers(port, 30)}; server running: {proc.poll() is None}")
    for sock in socks:
        sock.close()
    proc.terminate()
    proc.wait()


if __name__ == "__main__":
    {"slow-headers": slow_headers, "idle": idle}[sys.argv[1]](sys.argv[2])
