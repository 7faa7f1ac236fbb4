"""A small Label Studio REST client: find or create the project, import tasks in batches.

Auth is ``Authorization: Token <token>`` (the legacy API token; the server needs
``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true``). A 429, a 5xx or a transport error
is retried ``max_retries`` times with capped exponential backoff, honouring the
peer's ``Retry-After``; then it is a :class:`~sidecar.errors.RetryableError`.
Any other 4xx is a :class:`~sidecar.errors.PermanentError` (bad token, unknown
project, task data the project's labeling config cannot take), and so is a
2xx whose body is not JSON (a login page of an auth proxy). The token is never
logged nor put into an error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

import httpx

from ...errors import PermanentError, RetryableError
from ...scorers.judge.client import parse_retry_after
from .settings import LabelStudioSettings
from .tasks import labeling_config

log = logging.getLogger(__name__)

_BACKOFF_START: Final = 0.5
_MAX_PAGES: Final = 100


class LabelStudioClient:
    """One project of one Label Studio server."""

    def __init__(
        self, settings: LabelStudioSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.project_id = settings.project_id
        self.label_config: str | None = None
        """The project's labeling config, once :meth:`start` found or created it."""
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.imported = 0

    async def start(self) -> None:
        """Connect and resolve the project (by id, else by title, creating it if missing)."""
        s = self.settings
        assert s.token is not None  # the settings read it from the environment
        self._client = httpx.AsyncClient(
            base_url=s.url,
            headers={"Authorization": f"Token {s.token.get_secret_value()}"},
            timeout=s.timeout_s,
            transport=self._transport,
        )
        if self.project_id is not None:
            project = await self._call("GET", f"/api/projects/{self.project_id}/")
        else:
            project = await self._find(s.project_title) or await self._call(
                "POST",
                "/api/projects/",
                json={
                    "title": s.project_title,
                    "description": "Traces rag-sidecar selected for human review.",
                    "label_config": labeling_config(),
                },
            )
            self.project_id = int(project["id"])
            log.info(
                "label studio project",
                extra={"fields": {"project_id": self.project_id, "title": s.project_title}},
            )
        self.label_config = str(project.get("label_config") or "")

    async def _find(self, title: str) -> dict[str, Any] | None:
        for page in range(1, _MAX_PAGES + 1):
            doc = await self._call(
                "GET", "/api/projects/", params={"title": title, "page": page, "page_size": 100}
            )
            found = [p for p in doc.get("results", []) if p.get("title") == title]
            if found:
                return dict(min(found, key=lambda p: int(p["id"])))
            if not doc.get("next"):
                return None
        return None

    async def import_tasks(self, tasks: Sequence[dict[str, Any]]) -> None:
        """Import tasks (with their predictions), ``batch_size`` per request."""
        size = self.settings.batch_size
        for start in range(0, len(tasks), size):
            batch = list(tasks[start : start + size])
            done = await self._call("POST", f"/api/projects/{self.project_id}/import", json=batch)
            self.imported += len(batch)
            sent = sum(len(t.get("predictions", ())) for t in batch)
            stored = done.get("prediction_count")
            if isinstance(stored, int) and stored < sent:  # e.g. concurrent imports into SQLite
                fields = {"project_id": self.project_id, "sent": sent, "stored": stored}
                log.warning("label studio dropped predictions", extra={"fields": fields})

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One request with retries; its JSON body (an object)."""
        if self._client is None:
            raise PermanentError("label studio client used before start()")
        s = self.settings
        what = f"label studio {method} {path}"
        delay = _BACKOFF_START
        for attempt in range(s.max_retries + 1):
            retry_after: float | None = None
            try:
                resp = await self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{what}: {type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    try:
                        body = resp.json() if resp.content else {}
                    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                        raise PermanentError(
                            f"{what}: HTTP {resp.status_code}: the response is not JSON"
                        ) from exc
                    return body if isinstance(body, dict) else {"results": body}
                text = resp.text[:300]
                problem = f"{what}: HTTP {resp.status_code}: {text}"
                if resp.status_code != 429 and resp.status_code < 500:
                    raise PermanentError(problem)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
            if attempt == s.max_retries:
                raise RetryableError(problem, retry_after=retry_after)
            wait = min(retry_after if retry_after is not None else delay, s.max_retry_after_s)
            log.warning(
                "label studio request failed; retrying",
                extra={"fields": {"error": problem, "retry_in_s": wait}},
            )
            await asyncio.sleep(wait)
            delay *= 2
        raise AssertionError("unreachable")
