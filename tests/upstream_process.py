"""A konsilium server on the fake engine in a process of its own, for tests that kill it as a crashed upstream dies
(SIGKILL: no shutdown, its connections cut).

    python tests/upstream_process.py PORT [--first-delay S] [--delay-from N] [--chunk-delay S] [--filler N]
                                          [--thinking N]

`--first-delay`: seconds before an answer's first word (the response has begun: headers and the role chunk are
out), from the Nth chat request on (`--delay-from`; 1: all of them); `--chunk-delay`: seconds before each streamed
word, and per word before a whole answer (a slow upstream); `--filler`: words added to each answer; `--thinking`:
words of reasoning a chat answer starts with (`<think>`).
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2

MODEL = "fake-upstream"


@contextmanager
def upstream_process(port: int, *options: str):
    """Yield the process while it serves http://127.0.0.1:PORT/v1; killed afterwards if it still runs."""
    command = [sys.executable, str(Path(__file__)), str(port), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the upstream process did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stderr.close()


def _answers(port: int) -> bool:
    try:
        return httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


def main() -> None:
    import uvicorn
    from fake_engine import FakeEngine, FakeStream

    from konsilium.server import create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--filler", type=int, default=0)
    parser.add_argument("--thinking", type=int, default=0)
    parser.add_argument("--first-delay", type=float, default=0.0)
    parser.add_argument("--delay-from", type=int, default=1)
    args = parser.parse_args()
    chats = itertools.count(1)

    class SlowStart(FakeStream):
        def __init__(self, engine, answer, delay: float):
            super().__init__(engine, answer)
            self.delay = delay

        def __next__(self):
            if not self.sent:
                time.sleep(self.delay)
            return super().__next__()

    class SlowFake(FakeEngine):
        def stream_chat(self, messages, params, adapter=None, tools=None):
            delay = args.first_delay if next(chats) >= args.delay_from else 0.0
            return SlowStart(self, self._chat(messages, params, adapter, tools), delay)

        def _result(self, answer):  # a whole answer takes as long as its words streamed would
            time.sleep(args.first_delay + self.chunk_delay_s * len(answer.pieces))
            return super()._result(answer)

    engine = SlowFake(chunk_delay_s=args.chunk_delay, filler_words=args.filler, thinking_words=args.thinking)
    uvicorn.run(create_app(engine, model_id=MODEL), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
