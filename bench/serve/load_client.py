#!/usr/bin/env python3
"""Bounded load client for `finch serve` (Python standard library only).

  load_client.py concurrent --port P --clients 32 --max-tokens 32
      N streaming chat clients at once; every stream is checked (SSE framing, one [DONE], one id,
      role first, a finish reason, usage equal to the tokens counted) and timed.
  load_client.py rss --port P --pid PID --requests 200 --max-tokens 16
      sequential requests, sampling the server's RSS (/proc/PID/status) after each one.
  load_client.py disconnect --port P --runs 5
      client A streams a long reply, client B waits in the queue behind it; A hangs up after a few
      tokens; how long until B's first token, minus B's first-token time on an idle model, against
      one decode step (A's median time between tokens).

Each prints one JSON object on stdout. Every socket has a timeout, so a stuck server fails the
run instead of hanging it.
"""
import argparse
import http.client
import json
import socket
import statistics
import sys
import threading
import time

TIMEOUT = 600


def chat_body(prompt, max_tokens, stream=True, ignore_eos=True, seed=None):
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": ignore_eos, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if seed is not None:
        body["seed"] = seed
    return json.dumps(body)


def stream_chat(port, body, on_token=None):
    """One streamed chat completion over a raw socket; returns timings and the checked stream."""
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    data = body.encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    reader = sock.makefile("rb")
    status = reader.readline().decode()
    if not status.startswith("HTTP/1.1 200"):
        raise RuntimeError(f"status {status.strip()}")
    chunked = False
    while True:
        line = reader.readline().decode().strip()
        if not line:
            break
        if line.lower() == "transfer-encoding: chunked":
            chunked = True
    if not chunked:
        raise RuntimeError("expected a chunked event stream")
    raw = b""
    first_token = None
    token_times = []
    events = []
    while True:
        size = int(reader.readline().strip(), 16)
        if size == 0:
            reader.readline()
            break
        raw += reader.read(size)
        reader.readline()
        while b"\n\n" in raw:
            event, raw = raw.split(b"\n\n", 1)
            text = event.decode("utf-8")
            if not text.startswith("data: ") or "\n" in text:
                raise RuntimeError(f"malformed event {text!r}")
            payload = text[len("data: "):]
            events.append(payload)
            if payload != "[DONE]":
                chunk = json.loads(payload)
                choices = chunk.get("choices") or []
                if choices and choices[0].get("delta", {}).get("content"):
                    now = time.perf_counter()
                    token_times.append(now)
                    if first_token is None:
                        first_token = now
                    if on_token and on_token(len(token_times), sock):
                        return {"aborted": True, "token_times": token_times, "started": started}
    sock.close()
    ended = time.perf_counter()
    if raw:
        raise RuntimeError(f"trailing bytes {raw!r}")
    if events.count("[DONE]") != 1 or events[-1] != "[DONE]":
        raise RuntimeError("the stream must end with exactly one [DONE]")
    chunks = [json.loads(e) for e in events[:-1]]
    if len({c["id"] for c in chunks}) != 1:
        raise RuntimeError("chunk ids differ")
    if chunks[0]["choices"][0]["delta"].get("role") != "assistant":
        raise RuntimeError("the first chunk must carry the role")
    if not chunks[-1]["usage"] or chunks[-1]["choices"]:
        raise RuntimeError("the last chunk must be the usage chunk")
    finish = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"][0]["finish_reason"]]
    if len(finish) != 1 or chunks[-2]["choices"][0]["finish_reason"] is None:
        raise RuntimeError(f"exactly one finish reason, in the chunk before usage: {finish}")
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    return {"aborted": False, "started": started, "first_token": first_token, "ended": ended, "text": text,
            "completion_tokens": chunks[-1]["usage"]["completion_tokens"], "token_times": token_times,
            "finish_reason": finish[0]}


def concurrent(args):
    results = [None] * args.clients
    errors = []

    def client(i):
        try:
            results[i] = stream_chat(args.port, chat_body(f"Tell me a story about the number {i}.", args.max_tokens))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"client {i}: {error}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    wall_start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    wall = time.perf_counter() - wall_start
    done = [r for r in results if r]
    tokens = sum(r["completion_tokens"] for r in done)
    # Per client: its tokens over the time from its request to its last byte (queue wait included),
    # and over the time it was actually being served (first token to last), i.e. decode speed.
    per_client_total = [r["completion_tokens"] / (r["ended"] - r["started"]) for r in done]
    per_client_served = [(r["completion_tokens"] - 1) / (r["token_times"][-1] - r["first_token"])
                         for r in done if len(r["token_times"]) > 1 and r["token_times"][-1] > r["first_token"]]
    wrong_length = [i for i, r in enumerate(results) if r and r["completion_tokens"] != args.max_tokens]
    print(json.dumps({
        "clients": args.clients, "completed": len(done), "errors": errors, "wrong_length": wrong_length,
        "max_tokens": args.max_tokens, "tokens": tokens, "wall_s": round(wall, 2),
        "total_tokens_per_s": round(tokens / wall, 2),
        "per_client_tokens_per_s_incl_queue": {"median": round(statistics.median(per_client_total), 2),
                                               "min": round(min(per_client_total), 2), "max": round(max(per_client_total), 2)},
        "per_client_decode_tokens_per_s_while_served": {"median": round(statistics.median(per_client_served), 2)},
        "time_to_first_token_s": {"min": round(min(r["first_token"] - r["started"] for r in done), 2),
                                  "max": round(max(r["first_token"] - r["started"] for r in done), 2)},
    }))
    return 0 if len(done) == args.clients and not errors and not wrong_length else 1


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def rss(args):
    samples = []
    for i in range(args.requests):
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=TIMEOUT)
        body = chat_body(f"Request {i}: name a fruit.", args.max_tokens, stream=(i % 2 == 0))
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"request {i}: {response.status} {payload[:200]!r}")
        samples.append(rss_kb(args.pid))
    warm = samples[args.warmup - 1]
    print(json.dumps({
        "requests": args.requests, "rss_mb_after": {str(n): round(samples[n - 1] / 1024, 1) for n in
                                                     (1, args.warmup, args.requests // 2, args.requests)},
        "rss_mb_max": round(max(samples) / 1024, 1),
        "growth_after_warmup_mb": round((samples[-1] - warm) / 1024, 1),
        "max_over_warmup_mb": round((max(samples[args.warmup - 1:]) - warm) / 1024, 1),
    }))
    return 0


def first_token_alone(port):
    r = stream_chat(port, chat_body("Say something.", 4))
    return r["first_token"] - r["started"]


def health(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", "/health")
    value = json.loads(conn.getresponse().read())
    conn.close()
    return value


def disconnect(args):
    runs = []
    for _ in range(args.runs):
        baseline = statistics.median(first_token_alone(args.port) for _ in range(3))
        streaming, hang_up = threading.Event(), threading.Event()
        state, b_result = {}, {}

        def on_a_token(count, sock):
            streaming.set()
            if hang_up.is_set() and count >= args.after_tokens:
                # Hang up as a closed browser tab does: the socket goes away mid-stream.
                state["closed_at"] = time.perf_counter()
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                return True
            return False

        a_thread = threading.Thread(target=lambda: state.update(a=stream_chat(
            args.port, chat_body("Count from one to one thousand.", 2000), on_token=on_a_token)))
        a_thread.start()
        if not streaming.wait(TIMEOUT):
            raise RuntimeError("client A never streamed")
        b_thread = threading.Thread(target=lambda: b_result.update(stream_chat(args.port, chat_body("Say something.", 4))))
        b_thread.start()
        deadline = time.perf_counter() + 60
        while health(args.port)["waiting"] < 1:  # B is queued behind A
            if time.perf_counter() > deadline:
                raise RuntimeError("client B never queued")
            time.sleep(0.005)
        hang_up.set()
        a_thread.join(TIMEOUT)
        b_thread.join(TIMEOUT)
        a_times = state["a"]["token_times"]
        step = statistics.median(b - a for a, b in zip(a_times, a_times[1:]))
        gap = b_result["first_token"] - state["closed_at"]
        runs.append({"decode_step_ms": round(step * 1000, 1), "b_first_token_after_hangup_ms": round(gap * 1000, 1),
                     "b_first_token_idle_ms": round(baseline * 1000, 1),
                     "model_freed_after_ms": round((gap - baseline) * 1000, 1)})
    print(json.dumps({"runs": runs,
                      "median_model_freed_after_ms": statistics.median(r["model_freed_after_ms"] for r in runs),
                      "median_decode_step_ms": statistics.median(r["decode_step_ms"] for r in runs)}))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("concurrent")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--clients", type=int, default=32)
    c.add_argument("--max-tokens", type=int, default=32)
    r = sub.add_parser("rss")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--requests", type=int, default=200)
    r.add_argument("--warmup", type=int, default=20)
    r.add_argument("--max-tokens", type=int, default=16)
    d = sub.add_parser("disconnect")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--runs", type=int, default=5)
    d.add_argument("--after-tokens", type=int, default=8)
    args = parser.parse_args()
    return {"concurrent": concurrent, "rss": rss, "disconnect": disconnect}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
