"""Cold start of `doorward serve`: from exec to the first answered request, probed every 2 ms
(the side-by-side kit polls every 100 ms).

    cargo build --release -p doorward
    python3 bench/cold_start.py target/release/doorward     # STARTS=5, server on CPU 1

Three rows, each STARTS starts: the bench configuration on a fresh SQLite database (keys
generated, the configured secrets hashed), the same on the database the previous start left,
and `--ephemeral` with one user and one client (in memory, everything fresh each time). Each
server listens on a free loopback port and is stopped after its first answer.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "bench", "doorward.toml")
PROBE_S = 0.002


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(args: list[str]) -> list[str]:
    return ["taskset", "-c", os.environ.get("SERVER_CPU", "1"), *args]


def first_answer(url: str, process: subprocess.Popen, started: float) -> float:
    """Milliseconds from `started` to the first HTTP answer from `url`."""
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return (time.monotonic() - started) * 1000
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with status {process.returncode}")
            time.sleep(PROBE_S)


def serve(binary: str, database: str) -> float:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = subprocess.Popen(
        pinned([binary, "serve", "--config", CONFIG, "--listen", f"127.0.0.1:{port}",
                "--metrics-listen", "127.0.0.1:0", "--external-uri", origin,
                "--database", f"sqlite:{database}"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        return first_answer(f"{origin}/.well-known/openid-configuration", process, started)
    finally:
        process.terminate()
        process.wait()


def ephemeral(binary: str) -> float:
    started = time.monotonic()
    process = subprocess.Popen(
        pinned([binary, "serve", "--ephemeral", "--user", "alice:correct horse battery",
                "--client", "app:app-secret-0123:http://localhost:9/cb"]),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in process.stdout:
            if line.startswith("listening on "):
                origin = line.split()[2]
                return first_answer(f"{origin}/.well-known/openid-configuration", process, started)
        raise SystemExit("the ephemeral server printed no `listening on` line")
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    starts = int(os.environ.get("STARTS", "5"))
    with tempfile.TemporaryDirectory() as tmp:
        database = os.path.join(tmp, "cold.sqlite")
        fresh, existing = [], []
        for _ in range(starts):
            for name in os.listdir(tmp):
                os.remove(os.path.join(tmp, name))
            fresh.append(serve(binary, database))
            existing.append(serve(binary, database))
    rows = [
        ("fresh SQLite database", fresh),
        ("existing SQLite database", existing),
        ("--ephemeral, one user and one client", [ephemeral(binary) for _ in range(starts)]),
    ]
    print(f"{'start':<40} ms to the first answer ({starts} starts)")
    for name, times in rows:
        print(f"{name:<40} " + ", ".join(f"{t:.0f}" for t in times))


if __name__ == "__main__":
    main()
