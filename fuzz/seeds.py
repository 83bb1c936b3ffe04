#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the tests' own inputs.

Run by `scripts/fuzz --seeds`, which afterwards lets the envelope targets add the envelopes our
code seals from these plaintexts (files named gen-*). Deterministic: the same tests give the same
files. Seeds are "<mode byte><document>" where a target reads a mode byte (see each target's
header comment), else the document alone.
"""

import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "api", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED = 16 * 1024  # scripts/fuzz runs with -max_len 16384 (stream targets 32768)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def fixture(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def stem(path):
    return os.path.basename(path).split(".")[0]


class Corpus:
    def __init__(self, target):
        self.dir = os.path.join(OUT, target)
        os.makedirs(self.dir, exist_ok=True)
        self.names = set()

    def add(self, name, data, mode=None):
        if mode is not None:
            data = bytes([mode]) + data
        if len(data) > MAX_SEED:
            return
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        assert name not in self.names, name
        self.names.add(name)
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)


def pseudo_random(label, n):
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def sse_events(raw):
    """The data fields of an SSE fixture, in order (enough for these files: one data line each)."""
    return [line[len(b"data:"):].strip() for line in raw.replace(b"\r\n", b"\n").split(b"\n") if line.startswith(b"data:")]


def sse_of(chunks):
    return b"".join(b"data: " + (c if isinstance(c, bytes) else compact(c)) + b"\n\n" for c in chunks)


# ---- fixture sets --------------------------------------------------------------------------

anthropic_streams = sorted(glob.glob(os.path.join(FIX, "anthropic", "stream", "*.sse")))
anthropic_requests = sorted(glob.glob(os.path.join(FIX, "anthropic", "request", "*.in.json")))
chat_requests = sorted(glob.glob(os.path.join(FIX, "anthropic", "request", "*.out.json")))
chat_completions = sorted(glob.glob(os.path.join(FIX, "anthropic", "response", "*.chat.json")))
responses_requests = sorted(glob.glob(os.path.join(FIX, "responses", "request", "*.json")))
responses_answers = sorted(glob.glob(os.path.join(FIX, "responses", "response", "*.json")))
responses_streams = sorted(glob.glob(os.path.join(FIX, "responses", "stream", "*.json")))


def request_json_for(sse_path):
    path = sse_path[: -len(".sse")] + ".request.json"
    return compact(fixture(path)) if os.path.exists(path) else None


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    # sse_parser: the stream fixtures, and the framing corners of tests/http/sse_test.cpp.
    c = Corpus("sse_parser")
    for p in anthropic_streams:
        c.add(stem(p), read(p))
    c.add("bom_crlf", b"\xef\xbb\xbfevent: a\r\ndata: 1\r\ndata: 2\r\n\r\n:comment\rdata:x\r\r")
    c.add("fields", b"id: 7\nretry: 1000\nretry: -1\nevent: e\ndata\ndata:  two\nfoo: bar\n\nid\0x\ndata: last")
    c.add("cr_only", b"data: a\rdata: b\r\rdata: [DONE]\r\r")

    # http_request: the URLs of tests/http/url_test.cpp, each with a header block.
    c = Corpus("http_request")
    urls = re.findall(rb'"((?:https?|ftp|HTTPS?)://[^"]*)"', read(os.path.join(ROOT, "tests", "http", "url_test.cpp")))
    heads = [
        b"Host: localhost:8080\nConnection: keep-alive, Upgrade\nContent-Type: application/json\nX-Api-Key: k",
        b"host: 127.0.0.1\nTransfer-Encoding: gzip, chunked\ncontent-length: 12\nCONTENT-LENGTH: 13",
        b"Authorization: Bearer abc\nExpect: 100-continue\nbad name: x\nX-Ctl: a\rb",
        b"Connection: close\nConnection: keep-alive\nX-E2EE-Nonce: \t nonce1234567890123 \t",
    ]
    for i, url in enumerate(dict.fromkeys(urls)):
        c.add(f"url{i:02d}", url + b"\n" + heads[i % len(heads)] + b"\n")
    # The Host and Origin cases of tests/proxy/browser_guard_test.cpp (line 1 is also the list).
    c.add("guard_hosts", b"localhost, Proxy.Internal, https://App.example/\nHost: [::1]:8443\nHost: evil.example\n"
          b"Origin: https://app.example\nHost: proxy.internal.:1\nHost: [fe80::1%eth0]\nHost: 127.0.0.1.nip.io\n"
          b"Host: LOCALHOST.\nHost: app.localhost:1\nHost: ::1\n")
    c.add("guard_star", b"*, http://localhost:3000\nOrigin: http://localhost:3000/\nHost: 192.168.1.20:443\n")

    # gzip_decompress: members as Python's gzip writes them, several members, and broken ones.
    c = Corpus("gzip_decompress")
    samples = [read(chat_requests[0]), read(chat_completions[0]), b"", b"x" * 5000]
    for i, s in enumerate(samples):
        c.add(f"member{i}", gzip.compress(s, mtime=0))
    two = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)
    c.add("two_members", two)
    c.add("truncated", gzip.compress(samples[0], mtime=0)[:-9])
    c.add("trailing_zero", gzip.compress(b"abc", mtime=0) + b"\0\0")
    c.add("stored_level0", gzip.compress(b"stored block " * 20, compresslevel=0, mtime=0))

    # mlkem_parse: raw sizes (mode 0) and key pairs from seeds with edits (modes 1, 2).
    c = Corpus("mlkem_parse")
    for n in (2400, 1184, 1088, 64):
        c.add(f"raw{n}", pseudo_random(f"raw{n}", n), 0)
    for i in range(4):
        seed = pseudo_random(f"seed{i}", 64)
        c.add(f"dk_seed{i}", seed, 1)
        c.add(f"dk_edit{i}", seed + bytes([i * 7, i % 2, 0xFF, (i * 91) % 256, 4, 0x0F]), 1)
        c.add(f"ek_edit{i}", seed + bytes([i * 11, i % 2, 0xFF, 0x30, 4, 0x0D]), 2)

    # chutes_envelope: plaintext for the sealing modes; scripts/fuzz --seeds adds the blobs.
    c = Corpus("chutes_envelope")
    for p in chat_requests[:8]:
        c.add("request_" + stem(p), compact(fixture(p)), 3)
    c.add("request_not_object", b"[1,2]", 3)
    for p in chat_completions[:6]:
        c.add("response_" + stem(p), read(p), 4)
    for p in anthropic_streams[:8]:
        lines = [b"@"] + [b"!data: " + d for d in sse_events(read(p))]
        lines.insert(2, b'{"usage":{"prompt_tokens":5,"completion_tokens":3}}')
        c.add("stream_" + stem(p), b"\n".join(lines) + b"\n", 5)
    c.add("stream_events", b'{"usage":{"prompt_tokens":3}}\n@\n!data: x\n{"e2e_error":{"message":"m"}}\n#y\n', 5)
    c.add("stream_before_init", b'!data: x\n@\n@\n', 5)
    c.add("short_blob", b"\0" * 100, 0)
    c.add("short_response", b"\0" * 1115, 1)
    c.add("payload_not_gzip", b'{"model":"m"}', 6)

    # field_envelope: round trips, keys and deterministic sealing; envelopes added by --seeds.
    c = Corpus("field_envelope")
    for scheme in range(4):
        c.add(f"roundtrip{scheme}", b"\x00" + "hello, wörld".encode(), 4 + scheme)
        c.add(f"roundtrip_aad{scheme}", b"\x05v2|reqsecret text", 4 + scheme)
        c.add(f"deterministic{scheme}",
              pseudo_random(f"eph{scheme}", 32) + pseudo_random(f"nonce{scheme}", 12 if scheme < 2 else 24) + b"text", 12 + scheme)
        c.add(f"not_hex{scheme}", b"zz" * 80, scheme)
    for n in (32, 33, 64, 65):
        for scheme in (0, 1):
            c.add(f"key{n}_{scheme}", (b"\x04" if n == 65 else b"") + pseudo_random(f"key{n}", n - (n == 65)), 8 + scheme)

    # field_fields: chat requests and answers under several policies; --seeds adds them encrypted.
    c = Corpus("field_fields")
    policies = [0, 4 | 32 | 64, 8 | 16, 12 | 32 | 128, 16 | 32 | 64 | 128]
    for i, p in enumerate(chat_requests[:10]):
        c.add("request_" + stem(p), compact(fixture(p)), 2 | policies[i % len(policies)])
    c.add("request_parts", compact({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:x"}}]}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}}), 2 | 4 | 32)
    for i, p in enumerate(chat_completions[:8]):
        c.add("response_" + stem(p), read(p), 3 | policies[i % len(policies)])
    for i, p in enumerate(anthropic_streams[:6]):
        for j, d in enumerate(sse_events(read(p))[:3]):
            if d != b"[DONE]":
                c.add(f"chunk_{stem(p)}_{j}", d, 3 | policies[(i + j) % len(policies)])
    c.add("response_logprobs", compact({"id": "c", "model": "m", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": "hi", "tool_calls": [{"id": "t", "type": "function",
        "function": {"name": "f", "arguments": "{}"}}]}, "logprobs": {"content": [{"token": "hi",
        "bytes": [104, 105], "logprob": -0.1, "top_logprobs": [{"token": "hi", "bytes": [104, 105]}]}]}}]}), 3 | 32)

    # field_negotiation: written by the target itself (--seeds); a plain request here.
    c = Corpus("field_negotiation")
    c.add("plain", b"Content-Type: application/json\nAuthorization: Bearer x\n")

    # chat_model: completions, chunks and engine error bodies.
    c = Corpus("chat_model")
    for i, p in enumerate(chat_completions):
        c.add("completion_" + stem(p), read(p), 2 * i)
    for p in responses_answers:
        f = fixture(p)
        if "completion" in f:
            c.add("answer_" + stem(p), compact(f["completion"]), 4)
        if "completion_text" in f:
            c.add("answer_text_" + stem(p), f["completion_text"].encode(), 12)
    for p in anthropic_streams[:8]:
        for j, d in enumerate(sse_events(read(p))[:4]):
            if d != b"[DONE]":
                c.add(f"chunk_{stem(p)}_{j}", d, 1 + 2 * j)
    c.add("error_vllm", b'{"object":"error","message":"This model\'s maximum context length is 8192 tokens","type":"BadRequestError","code":400}', 8)
    c.add("error_string", b'{"error":"overloaded"}', 14)

    # anthropic_request: Messages bodies under several option sets.
    c = Corpus("anthropic_request")
    requests = anthropic_requests + sorted(glob.glob(os.path.join(FIX, "anthropic", "*", "*.request.json")))
    for i, p in enumerate(requests):
        c.add(os.path.basename(os.path.dirname(p)) + "_" + stem(p), read(p), (i * 37) % 256)

    # responses_request: the request of every fixture, and the raw texts of the error cases.
    c = Corpus("responses_request")
    for i, p in enumerate(responses_requests + responses_answers + responses_streams):
        f = fixture(p)
        kind = os.path.basename(os.path.dirname(p))
        if "request" in f:
            c.add(kind + "_" + stem(p), compact(f["request"]), i % 16)
        if "request_text" in f:
            c.add(kind + "_text_" + stem(p), f["request_text"].encode(), i % 16)

    # anthropic_stream: the engine streams, with their request on the first line when they have one.
    c = Corpus("anthropic_stream")
    for p in anthropic_streams:
        req = request_json_for(p)
        c.add(stem(p), (req + b"\n" if req else b"") + read(p))

    # responses_stream: request line, then the chunks as SSE, ended as the fixture says.
    c = Corpus("responses_stream")
    for p in responses_streams:
        f = fixture(p)
        body = compact(f["request"]) + b"\n" + sse_of(f.get("chunks", []))
        if f.get("end", "done") == "done":
            body += b"data: [DONE]\n\n"
        c.add(stem(p), body)

    counts = {t: len(os.listdir(os.path.join(OUT, t))) for t in sorted(os.listdir(OUT))}
    print("seeds:", ", ".join(f"{t} {n}" for t, n in counts.items()))


if __name__ == "__main__":
    sys.exit(main())
