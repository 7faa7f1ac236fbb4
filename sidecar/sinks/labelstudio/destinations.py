"""Where review tasks go: a JSONL or JSON-array file, a Kafka topic, a Label Studio project."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Protocol

import orjson

from ...config import FileSpec, KafkaSettings, KafkaSpec, parse_sink_uri
from ...errors import PermanentError, RetryableError
from ...events import Labels, Sampling, ScoredEvent
from ...trace import Chunk, Trace
from ..kafka import _Producer
from .api import LabelStudioClient
from .settings import ReviewSettings
from .tasks import Task, build_task, config_problems


class Destination(Protocol):
    """Where tasks go."""

    name: str

    async def start(self) -> None: ...
    async def send(self, tasks: Sequence[Task]) -> None: ...
    async def flush(self) -> None: ...
    async def aclose(self) -> None: ...


class TaskFile:
    """JSON Lines (append), or one JSON array kept valid after every write (``.json``)."""

    def __init__(self, spec: FileSpec) -> None:
        self.name = "file"
        self.spec = spec
        self.array = spec.path is not None and spec.path.suffix == ".json"
        self._fh: IO[bytes] | None = None
        self._tail = 0  # array: where the next element goes
        self._empty = True

    async def start(self) -> None:
        """Open (an existing array is extended, after checking it is one)."""
        path = self.spec.path
        if path is None:
            self._fh = sys.stdout.buffer
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.array:
                self._fh = path.open("ab")
                return
            old = path.read_bytes() if path.exists() else b""
            if old.strip():
                items = orjson.loads(old)
                if not isinstance(items, list):
                    raise PermanentError(f"{path} holds no JSON array")
                body = old.rstrip()[:-1].rstrip()  # drop the closing bracket
                self._tail, self._empty = len(body), not items
            else:
                path.write_bytes(b"[\n]\n")
                self._tail = 1
            self._fh = path.open("r+b")
        except (OSError, orjson.JSONDecodeError) as exc:
            raise PermanentError(f"review output {self.spec.uri}: {exc}") from exc

    async def send(self, tasks: Sequence[Task]) -> None:
        """Write and flush to the OS."""
        assert self._fh is not None
        docs = [orjson.dumps(t.doc) for t in tasks]
        try:
            if not self.array:
                self._fh.write(b"".join(d + b"\n" for d in docs))
            else:
                body = (b"\n" if self._empty else b",\n") + b",\n".join(docs)
                self._fh.seek(self._tail)
                self._fh.write(body + b"\n]\n")
                self._fh.truncate()
                self._tail += len(body)
                self._empty = False
            self._fh.flush()
        except OSError as exc:
            raise RetryableError(f"review output {self.spec.uri}: {exc.strerror}") from exc

    async def flush(self) -> None:
        """Flush (fsync a real file)."""
        if self._fh is not None:
            self._fh.flush()
            if self.spec.path is not None:
                os.fsync(self._fh.fileno())

    async def aclose(self) -> None:
        """Close a real file."""
        if self._fh is not None and self.spec.path is not None:
            self._fh.close()
        self._fh = None


class TaskTopic:
    """One Kafka message per task, keyed by trace id."""

    def __init__(self, spec: KafkaSpec, settings: KafkaSettings) -> None:
        self.name = "kafka"
        self._p = _Producer(spec, settings)

    async def start(self) -> None:
        """Connect the producer."""
        await self._p.start()

    async def send(self, tasks: Sequence[Task]) -> None:
        """Send and wait for every acknowledgement."""
        await self._p.send_all(
            [(t.doc["data"]["trace_id"].encode(), orjson.dumps(t.doc), []) for t in tasks]
        )

    async def flush(self) -> None:
        """Wait for buffered sends."""
        await self._p.flush()

    async def aclose(self) -> None:
        """Disconnect."""
        await self._p.stop()


class TaskProject:
    """Imports into a Label Studio project (see :mod:`.api`)."""

    def __init__(self, client: LabelStudioClient) -> None:
        self.name = "label_studio"
        self.client = client

    async def start(self) -> None:
        """Find or create the project; refuse one whose labeling config cannot take our tasks."""
        await self.client.start()
        problems = config_problems(self.client.label_config or "<View/>", sample_task().doc)
        if problems:
            await self.client.aclose()
            raise PermanentError(
                f"label studio project {self.client.project_id}: its labeling config cannot "
                f"take rag-sidecar's tasks: {'; '.join(problems)}"
            )

    async def send(self, tasks: Sequence[Task]) -> None:
        """Batched imports."""
        await self.client.import_tasks([t.doc for t in tasks])

    async def flush(self) -> None:
        """Imports are synchronous: nothing is buffered."""

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()


def sample_task() -> Task:
    """A task with every field and prediction (checks a project's labeling config)."""
    scores = {"faithfulness": 0.5, "answer_relevance": 0.5, "context_relevance": 0.5}
    event = ScoredEvent(
        "e", "t", "judge", 0.0, 0.0, "judge", "sample", Labels(), scores, [], Sampling()
    )
    trace = Trace(trace_id="t", query="q", answer="a", chunks=[Chunk(id="c", text="x")])
    return build_task(trace, event, ["sample"], None, now=0.0)


def build_destinations(s: ReviewSettings, kafka: KafkaSettings | None) -> list[Destination]:
    out: list[Destination] = []
    if s.output is not None:
        spec = parse_sink_uri(s.output)
        if isinstance(spec, KafkaSpec):
            out.append(TaskTopic(spec, kafka or KafkaSettings()))
        else:
            out.append(TaskFile(spec))
    if s.label_studio is not None:
        out.append(TaskProject(LabelStudioClient(s.label_studio)))
    return out
