"""A scripted stand-in for an embedding / rerank API on 127.0.0.1: answers like OpenAI's /embeddings and Cohere's
/rerank, and plays faults from a queue (an HTTP status, a delay past the client's timeout, a wrong dimension, an
empty vector) before answering normally."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def vector(text: str, dim: int, seed: str = "model-a") -> list[float]:
    """A deterministic vector per (model seed, text)."""
    rng = np.random.default_rng(int(hashlib.sha256(f"{seed}\0{text}".encode()).hexdigest()[:12], 16))
    return rng.standard_normal(dim).round(6).tolist()


class Stub:
    def __init__(self, dim: int = 8, seed: str = "model-a"):
        self.dim, self.seed = dim, seed
        self.faults: list[dict] = []  # played one per request, first to last
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append({"path": self.path, "body": body,
                                          "auth": self.headers.get("Authorization")})
                    fault = stub.faults.pop(0) if stub.faults else {}
                if fault.get("sleep"):
                    time.sleep(fault["sleep"])
                if fault.get("status"):
                    self._send(fault["status"], {"error": fault.get("message", "scripted fault")},
                               fault.get("headers", {}))
                    return
                if self.path.endswith("/embeddings"):
                    texts = body["input"]
                    data = [{"object": "embedding", "index": i, "embedding": vector(t, stub.dim, stub.seed)}
                            for i, t in enumerate(texts)]
                    if fault.get("dim"):
                        data[0]["embedding"] = data[0]["embedding"][:fault["dim"]]
                    if fault.get("empty"):
                        data[-1]["embedding"] = []
                    if fault.get("shuffle"):
                        data = data[::-1]
                    tokens = sum(len(t.split()) for t in texts)
                    self._send(200, {"object": "list", "data": data,
                                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
                elif self.path.endswith("/rerank"):
                    docs = body.get("documents") or body.get("texts")
                    scores = [float(np.dot(vector(body["query"], stub.dim, stub.seed),
                                           vector(d, stub.dim, stub.seed))) for d in docs]
                    results = [{"index": i, "relevance_score": s} for i, s in enumerate(scores)]
                    results.sort(key=lambda r: -r["relevance_score"])
                    if fault.get("drop"):
                        results = results[:-1]
                    tokens = len(body["query"].split()) * len(docs) + sum(len(d.split()) for d in docs)
                    if "texts" in body:  # Hugging Face TEI's shape: a bare list of {index, score}
                        self._send(200, [{"index": r["index"], "score": r["relevance_score"]} for r in results])
                    else:
                        self._send(200, {"results": results, "usage": {"total_tokens": tokens}})
                else:
                    self._send(404, {"error": "no such route"})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
