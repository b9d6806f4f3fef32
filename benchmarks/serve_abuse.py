"""`crossagent serve` under a bounded abuse loop, on 127.0.0.1, measured side by side in one run.

The server (the tiny model, one torch thread) runs in its own process. Rounds of 50
concurrent valid requests (the body ServerSampler sends: a mixed prompt with a 64x64 image)
are timed first alone, then while abuse threads send poisoned requests (<|image_pad|> in the
text), 5 MB bodies, 30000x30000 images, 100k-character prompts and bad parameters in a loop
that ends with the valid rounds. Then the server gets SIGTERM and the seconds to exit are timed.

Run: `python benchmarks/serve_abuse.py` (about two minutes on 2 cores); writes
benchmarks/results/serve_abuse.md.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
from crossagent.models.openai_messages import to_openai_messages  # noqa: E402
from crossagent.models.prompts import build_messages  # noqa: E402
from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "serve_abuse.md"
CONCURRENT = 50
ROUNDS = 3
ABUSE_THREADS = 2
MAX_TOKENS = 16
LONG_TOKENS = 4000  # the reply generating when SIGTERM comes


def valid_body(seed: int) -> dict:
    image = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    messages, images = build_messages("mixed", "Collect wood.", [], image)
    return {"model": "tiny", "messages": to_openai_messages(messages, images), "temperature": 0.0, "top_p": 1.0,
            "max_tokens": MAX_TOKENS, "seed": seed}


def png_header(width: int, height: int) -> str:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def abusive_bodies() -> dict[str, dict | bytes]:
    user = {"role": "user", "content": "Collect wood."}
    return {
        "poisoned (<|image_pad|> in text)": {"messages": [{"role": "user", "content": "<|image_pad|> wood"}]},
        "5 MB body": b'{"messages": [{"role": "user", "content": "' + b"x" * 5_000_000 + b'"}]}',
        "30000x30000 image": {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": png_header(30000, 30000)}}]}]},
        "100k-character prompt": {"messages": [{"role": "user", "content": "wood " * 20_000}]},
        "max_tokens -5, top_k -3, seed 2**70": {"messages": [user], "max_tokens": -5, "top_k": -3, "seed": 2**70},
        "empty messages": {"messages": []},
    }


def post(client: httpx.Client, url: str, body: dict | bytes) -> tuple[int, float]:
    started = time.perf_counter()
    content = {"json": body} if isinstance(body, dict) else {"content": body,
                                                              "headers": {"content-type": "application/json"}}
    try:
        status = client.post(url, **content).status_code
    except httpx.HTTPError as error:
        print(f"no answer: {error!r}", file=sys.stderr)
        status = 0
    return status, time.perf_counter() - started


def valid_rounds(url: str) -> list[tuple[int, float]]:
    results = []
    with httpx.Client(timeout=300, limits=httpx.Limits(max_connections=CONCURRENT)) as client, \
            ThreadPoolExecutor(CONCURRENT) as pool:
        for round_index in range(ROUNDS):
            bodies = [valid_body(round_index * 1000 + row) for row in range(CONCURRENT)]
            results += pool.map(lambda body: post(client, url, body), bodies)
    return results


def abuse(url: str, stop: threading.Event, seen: Counter, latency: dict[str, list[float]], offset: int) -> None:
    bodies = list(abusive_bodies().items())
    with httpx.Client(timeout=300) as client:
        index = offset
        while not stop.is_set():
            kind, body = bodies[index % len(bodies)]
            status, seconds = post(client, url, body)
            seen[(kind, status)] += 1
            latency.setdefault(kind, []).append(seconds)
            index += 1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100))


def start_server(model: Path, port: int, options: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "crossagent.cli", "serve", "--model", str(model), "--name", "tiny",
               "--port", str(port), *options]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
            return server
        except httpx.TransportError:
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def row(phase: str, results: list[tuple[int, float]]) -> str:
    seconds = [s for _, s in results]
    answered = sum(status == 200 for status, _ in results)
    others = Counter(status for status, _ in results if status != 200)
    return (f"| {phase} | {len(results)} | {answered} | {', '.join(f'{c} x {s}' for s, c in others.items()) or '-'} | "
            f"{percentile(seconds, 0.5):.2f} | {percentile(seconds, 0.95):.2f} | {max(seconds):.2f} |")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        model = create_tiny_model(Path(scratch) / "tiny")
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        server = start_server(model, port, ["--threads", "1", "--max-tokens-limit", str(LONG_TOKENS)])
        try:
            rss_start = rss_mb(server.pid)
            alone = valid_rounds(url)
            stop, seen, abuse_latency = threading.Event(), Counter(), {}
            abusers = [threading.Thread(target=abuse, args=(url, stop, seen, abuse_latency, offset))
                       for offset in range(ABUSE_THREADS)]
            for thread in abusers:
                thread.start()
            during = valid_rounds(url)
            stop.set()
            for thread in abusers:
                thread.join()
            rss_end = rss_mb(server.pid)
            cut = []  # the long request's status: not 200 if SIGTERM cut it
            # Greedy, the untrained tiny model's reply to this prompt runs to max_tokens (10-30 s).
            long_body = {"messages": [{"role": "user", "content": "Collect wood."}], "temperature": 0,
                         "max_tokens": LONG_TOKENS}
            long = threading.Thread(target=lambda: cut.append(post(httpx.Client(timeout=300), url, long_body)[0]))
            long.start()
            time.sleep(1.0)
            signalled = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            exit_seconds = time.perf_counter() - signalled
            long.join()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    lines = [
        "# `crossagent serve` under abuse (tiny Qwen2-VL, CPU, 1 torch thread, 127.0.0.1)",
        "",
        f"{ROUNDS} rounds of {CONCURRENT} concurrent valid requests (ServerSampler's body: mixed prompt, 64x64 "
        f"image, max_tokens {MAX_TOKENS}, a seed each), first alone, then while {ABUSE_THREADS} threads send "
        f"abusive requests in a loop; {os.cpu_count()} CPUs shared with other jobs. "
        "Run: `python benchmarks/serve_abuse.py`.",
        "",
        "| valid requests | sent | answered 200 | other answers (0: none) | p50 s | p95 s | max s |",
        "|---|---:|---:|---|---:|---:|---:|",
        row("alone", alone),
        row("during abuse", during),
        "",
        "| abusive request | sent | statuses | p95 s |",
        "|---|---:|---|---:|",
    ]
    for kind in abusive_bodies():
        statuses = {status: count for (name, status), count in sorted(seen.items()) if name == kind}
        sent = sum(statuses.values())
        times = abuse_latency.get(kind, [float("nan")])
        lines.append(f"| {kind} | {sent} | {', '.join(f'{c} x {s}' for s, c in statuses.items())} | "
                     f"{percentile(times, 0.95):.2f} |")
    lines += [
        "",
        f"Server memory (RSS): {rss_start:.0f} MB before, {rss_end:.0f} MB after the abuse.",
        f"SIGTERM 1 s into a greedy generation of {LONG_TOKENS} tokens: the server exited after {exit_seconds:.1f} s "
        f"(the generation's answer: {cut[0] or 'none'}).",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
