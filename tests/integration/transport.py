"""The tablet's real transport talking to the real server app in-process, and a network that misbehaves.

`FlaskTransport` is mobile.transport.HttpTransport with its HTTP adapter
replaced by one that hands each prepared request to the Flask test client.
Everything else is the tablet's own code: the JSON encoding, gzip for bodies
over 1 KiB, the bearer token, the checks of each answer's shape and the
mapping of error answers (401, 409 clock_skew, 413, other 4xx) to the typed
errors synchronize acts on. Nothing of that is written twice here.

`Network` sits between synchronize and a transport and does to requests what
a bad mobile network does: it drops a request before the server sees it,
loses the answer after the server acted, delivers a request twice, or
delivers a stale copy of an earlier request later. `Retrying` retries a call
that failed in the network, as urllib3's Retry does inside HttpTransport.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from mobile.transport import HttpError, HttpTransport, TransportError

BASE_URL = "http://gridpatrol.test"


class WsgiAdapter(BaseAdapter):
    """A requests adapter that answers from a Flask test client instead of a socket."""

    def __init__(self, client: Any):
        super().__init__()
        self.client = client

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        url = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        answer = self.client.open(url.path, method=request.method, headers=headers, data=request.body or b"",
                                  query_string=url.query)
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.status.partition(" ")[2]
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = answer.get_data()  # what requests' own adapters fill from the socket
        response.url = request.url
        response.request = request
        response.connection = self
        return response

    def close(self) -> None:
        pass


class FlaskTransport(HttpTransport):
    """HttpTransport, unchanged, whose requests go to a Flask app's test client."""

    def __init__(self, client: Any, token: str | None = None, **kwargs: Any):
        super().__init__(BASE_URL, token, **kwargs)
        adapter = WsgiAdapter(client)
        for session in (self.session, self.upload_session):  # records and photos alike
            session.trust_env = False  # no proxies or netrc to look up: the server is in-process
            session.mount("http://", adapter)
            session.mount("https://", adapter)


class Network:
    """Wraps a transport; per request, decides what the network does with it.

    Modes: ``ok``; ``before`` (dropped before the server saw it); ``after``
    (the server acted, the answer was lost); ``twice`` (delivered twice, the
    second answer comes back); ``late`` (delivered, and a copy is delivered
    again before some later request). ``during_push`` runs after the server
    answered a push and before the answer reaches the tablet: the worker
    editing while a push is in flight.
    """

    MODES = ("ok", "before", "after", "twice", "late")

    def __init__(self, inner: Any, chance: random.Random, *, failure_rate: float = 0.3,
                 during_push: Callable[[], None] | None = None):
        self.inner = inner
        self.chance = chance
        self.failure_rate = failure_rate
        self.during_push = during_push
        self.late: list[tuple[str, tuple, dict]] = []
        self.counts = {mode: 0 for mode in self.MODES}

    def _mode(self) -> str:
        if self.chance.random() >= self.failure_rate:
            return "ok"
        return self.chance.choice(self.MODES[1:])

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.late and self.chance.random() < 0.5:
            # An old copy of an earlier request finally arrives; nobody waits for its answer.
            old = self.late.pop(self.chance.randrange(len(self.late)))
            try:
                getattr(self.inner, old[0])(*old[1], **old[2])
            except HttpError:
                pass
        mode = self._mode()
        self.counts[mode] += 1
        if mode == "before":
            raise TransportError(f"{name}: connection refused (before the server acted)")
        if mode == "late":
            self.late.append((name, args, kwargs))
        if mode == "twice":
            try:
                getattr(self.inner, name)(*args, **kwargs)
            except HttpError:
                pass
        answer = getattr(self.inner, name)(*args, **kwargs)
        if name == "push" and self.during_push is not None:
            self.during_push()
        if mode == "after":
            raise TransportError(f"{name}: connection reset (after the server acted)")
        return answer

    def login(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("login", *args, **kwargs)

    def push(self, node: str, changes: Sequence[Mapping[str, Any]], sent_at: str) -> dict[str, Any]:
        # The copy kept for a late delivery must not change when the caller's list does.
        return self._call("push", node, [dict(c) for c in changes], sent_at)

    def pull(self, cursors: Mapping[str, str], limit: int) -> dict[str, Any]:
        return self._call("pull", dict(cursors), limit)


class Retrying:
    """Retries a call that failed in the network (not an error answer), up to `attempts` times in all."""

    def __init__(self, inner: Any, attempts: int = 3):
        self.inner = inner
        self.attempts = attempts
        self.retries = 0

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(self.attempts):
            try:
                return getattr(self.inner, name)(*args, **kwargs)
            except HttpError:
                raise  # the server answered: retrying would get the same answer
            except TransportError:
                if attempt == self.attempts - 1:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    def login(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("login", *args, **kwargs)

    def push(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("push", *args, **kwargs)

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("pull", *args, **kwargs)


class Acknowledgements:
    """Records every write the tablet saw acknowledged (applied or stale) in a push answer."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.writes: list[tuple[str, str, str, Any, str]] = []  # kind, id, field, value, hlc

    def login(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.login(*args, **kwargs)

    def push(self, node: str, changes: Sequence[Mapping[str, Any]], sent_at: str) -> dict[str, Any]:
        answer = self.inner.push(node, changes, sent_at)
        for change, result in zip(changes, answer.get("results") or []):
            if result.get("status") in ("applied", "stale"):
                for name, (value, hlc) in change["fields"].items():
                    self.writes.append((change["kind"], change["id"], name, value, hlc))
        return answer

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.pull(*args, **kwargs)
