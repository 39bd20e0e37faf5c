"""The sync transport: the three calls of the wire contract over HTTP, with typed errors.

`synchronize` (mobile/sync.py) talks to a `Transport`: anything with `login`,
`push` and `pull` taking and returning wire JSON. `HttpTransport` is the real
one; tests inject an in-memory server or a flaky wrapper instead.

Properties: every call is safe to repeat. A push is idempotent by design
(merge is), a pull only reads, a log-in at worst registers the device twice.
So the transport retries *every* method, POST included, with exponential
backoff, on connection errors, read errors and 502/503/504, through urllib3's
`Retry`. A 500 is not retried here: it is most likely a bug that would fail
the same way again, and the next sync retries anyway.

Hazard: a request that reached the server but whose answer was lost. The
client cannot tell it from one that never arrived, and retries it. That is
exactly why the protocol is idempotent; nothing here tries to be clever.

Hazard: a slow or dead network on a tablet. Every request has a connect and a
read timeout, so a sync ends with `TransportError` instead of hanging, and
request bodies over ~1 KiB are gzip-compressed (the server accepts
``Content-Encoding: gzip``); JSON of records compresses several-fold.

The photo calls (`PhotoTransport`: which photos the server lacks, how many
bytes of one it holds, append at that offset) go through the same error
mapping, but a photo append is never retried blindly (see `upload_session`).

Errors are typed so the sync loop can decide without parsing messages:
`Unauthorized` (401: log in again, touch nothing), `ClockSkew` (409
``clock_skew``: correct the clock and re-stamp), `Rejected` (any other 4xx),
`HttpError` (5xx after retries), `LinkCut` (the connection broke while a
request or its answer was on its way: synchronize asks again, smaller),
`TransportError` (no connection after retries, a timeout, or an answer that
is not the contract's JSON). All derive from `TransportError`.

Hazard: an answer cut part way. urllib3's `Retry` covers a request until its
answer's headers arrive; a body cut after that (IncompleteRead, a truncated
gzip stream) reaches the caller, as `LinkCut`. Pull answers are asked for
gzip-compressed (requests sends ``Accept-Encoding: gzip`` and inflates), and
a pull may carry a byte budget (``max_bytes``) that synchronize adapts.

Speed of a first sync (issue 19): an answer's body is read in one piece,
not in requests' chunks of 10 KiB; the environment (proxies, a CA bundle) is
read once per transport, not twice per request; and a pull answer is decoded
by `decode_pull`, which gives json.loads' answer and, beside it, the text of
each change's fields, which the store keeps instead of encoding it again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from datetime import datetime, timezone
from json.scanner import make_scanner
from typing import Any, Mapping, Protocol, Sequence

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError as Urllib3Error, NewConnectionError
from urllib3.util.retry import Retry

__all__ = [
    "Transport", "HttpTransport", "TransportError", "LinkCut", "HttpError", "Rejected", "TooLarge", "Unauthorized",
    "ClockSkew", "API_PREFIX", "PhotoTransport", "PulledPage", "decode_pull",
]

API_PREFIX = "/api/v1"
RETRY_STATUSES = (502, 503, 504)


class TransportError(Exception):
    """The server could not be reached, or answered outside the contract."""


class HttpError(TransportError):
    """The server answered with an error status and the error shape."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class LinkCut(TransportError):
    """The connection broke while a request or its answer was on its way (reset, cut short, a truncated gzip).

    The server was reached, so the link is there but bad: synchronize asks again, smaller, within the
    sync. A server that cannot be reached at all (refused, timed out) is a plain TransportError.
    """


class Rejected(HttpError):
    """A 4xx other than 401 and clock skew: the request itself is refused."""


class TooLarge(Rejected):
    """413: the push carried too many changes or too many bytes."""


class Unauthorized(HttpError):
    """401: the device token is missing, unknown or revoked; log in again."""


class ClockSkew(HttpError):
    """409 clock_skew: the push was stamped too far ahead of the server's clock."""

    def __init__(self, server_time_ms: int, message: str = "clock skew", details: Any = None):
        super().__init__(409, "clock_skew", message, details)
        self.server_time_ms = server_time_ms


class Transport(Protocol):
    """The calls synchronize needs; HttpTransport and the test fakes implement it."""

    def login(self, username: str, password: str, device_name: str, node: str) -> dict[str, Any]:
        """Log in; answers {token, user, buckets}."""
        ...

    def push(self, node: str, changes: Sequence[Mapping[str, Any]], sent_at: str) -> dict[str, Any]:
        """Push wire changes; answers {results, hlc}."""
        ...

    def pull(self, cursors: Mapping[str, str], limit: int) -> dict[str, Any]:
        """Pull one page; answers {changes, cursors, more, hlc}.

        A transport may also take ``max_bytes`` (a keyword: the page's byte budget, HttpTransport does);
        synchronize passes it only to a pull that names it.
        """
        ...


class PhotoTransport(Protocol):
    """The photo calls the photo queue needs (mobile/photos.py); HttpTransport implements them."""

    def photos_missing(self, hashes: Sequence[str]) -> list[str]:
        """Which of the hashes the server does not hold complete."""
        ...

    def photo_offset(self, sha256: str) -> tuple[int, int | None]:
        """(bytes held, declared length or None); (0, None) when the server holds nothing."""
        ...

    def photo_append(self, sha256: str, offset: int, length: int, data: bytes) -> int:
        """Append data at offset to a photo of length bytes; answers the new offset."""
        ...


def parse_server_time(text: Any) -> int:
    """ISO 8601 UTC (2026-11-27T19:48:00.123Z) to Unix milliseconds."""
    if not isinstance(text, str):
        raise ValueError("server_time must be a string")
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


class HttpTransport:
    """The wire contract over requests, with retries, timeouts and gzip."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | tuple[float, float] = (10.0, 60.0),
        retries: int = 5,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        gzip_min_bytes: int = 1024,
        user_agent: str = "GridPatrol-mobile/0.1",
    ):
        base = base_url.rstrip("/")
        # Accept both the server root and the API root, so a setting can be either.
        self.base_url = base if base.endswith(API_PREFIX) else base + API_PREFIX
        self.token = token
        self.timeout = timeout
        self.gzip_min_bytes = gzip_min_bytes
        self.pull_budget = True  # whether the server takes a pull's max_bytes (False once it refused it)
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=None,  # POST too: every call of the contract is idempotent
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last error answer is mapped to a typed error below
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        # Photo appends go without read or status retries: a blind retry would resend a chunk the
        # server partly holds and get 409. The photo queue asks HEAD and resumes instead.
        self.upload_session = requests.Session()
        upload_adapter = HTTPAdapter(max_retries=retry.new(read=0, status=0))
        self.upload_session.mount("http://", upload_adapter)
        self.upload_session.mount("https://", upload_adapter)
        self.upload_session.headers.update(self.session.headers)
        # The environment (proxies, a CA bundle) is read once, here, not on every request: requests reads every
        # environment variable twice per request, a fifth of a pull page's client CPU (issue 19). A netrc
        # file is not read at all: its Basic credentials would replace the device token's header.
        settings = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        for session in (self.session, self.upload_session):
            session.trust_env = False
            session.proxies.update(settings["proxies"])
            session.verify = settings["verify"]

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()
        self.upload_session.close()

    def __enter__(self) -> "HttpTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self, username: str, password: str, device_name: str, node: str) -> dict[str, Any]:
        """POST /auth/device; keeps the returned token for the calls that follow."""
        answer = self._post("/auth/device", {"username": username, "password": password,
                                             "device_name": device_name, "node": node}, auth=False)
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise TransportError("the log-in answer carries no token")
        self.token = token
        return answer

    def login_with_code(self, code: str, device_name: str, node: str) -> dict[str, Any]:
        """POST /auth/device-code (a one-time code an admin gave); keeps the returned token as login does."""
        answer = self._post("/auth/device-code", {"code": code, "device_name": device_name, "node": node}, auth=False)
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise TransportError("the log-in answer carries no token")
        self.token = token
        return answer

    def revoke(self) -> None:
        """POST /auth/revoke: this transport's token stops working at once (a log-in the app does not keep)."""
        self._post("/auth/revoke", {})
        self.token = None

    def push(self, node: str, changes: Sequence[Mapping[str, Any]], sent_at: str) -> dict[str, Any]:
        """POST /sync/push; answers {results, hlc}."""
        answer = self._post("/sync/push", {"node": node, "changes": list(changes), "sent_at": sent_at})
        if not isinstance(answer.get("results"), list):
            raise TransportError("the push answer carries no results list")
        return answer

    def pull(self, cursors: Mapping[str, str], limit: int, max_bytes: int | None = None) -> dict[str, Any]:
        """POST /sync/pull; answers {changes, cursors, more, hlc}. ``max_bytes``: the page's byte budget.

        The answer comes gzip-compressed from a server that does so (requests asks with Accept-Encoding
        and inflates it). A cut answer raises TransportError: urllib3 retries only until the answer's
        headers arrive, so synchronize asks for a cut page again, smaller.
        """
        body: dict[str, Any] = {"cursors": dict(cursors), "limit": limit}
        if max_bytes is not None and self.pull_budget:
            body["max_bytes"] = max_bytes
        try:
            answer = self._post("/sync/pull", body, decode=decode_pull)
        except Rejected as exc:
            # A server that predates max_bytes refuses it as an unknown field (400): page by limit alone, as
            # before, for the life of this transport.
            if "max_bytes" not in body or exc.status != 400 or "max_bytes" not in str(exc.details):
                raise
            self.pull_budget = False
            del body["max_bytes"]
            answer = self._post("/sync/pull", body, decode=decode_pull)
        if not isinstance(answer.get("changes"), list) or not isinstance(answer.get("cursors"), dict):
            raise TransportError("the pull answer carries no changes list or cursors object")
        return answer

    def photos_missing(self, hashes: Sequence[str]) -> list[str]:
        """POST /photos/missing; answers the hashes the server does not hold complete."""
        answer = self._post("/photos/missing", {"sha256": list(hashes)})
        missing = answer.get("missing")
        if not isinstance(missing, list) or not all(isinstance(h, str) for h in missing):
            raise TransportError("the missing answer carries no list of hashes")
        return missing

    def photo_offset(self, sha256: str) -> tuple[int, int | None]:
        """HEAD /photos/<sha256>; answers (bytes held, declared length or None), (0, None) when none."""
        response = self._send(self.session, "HEAD", f"/photos/{sha256}", {})
        with response:
            if response.status_code == 404:
                return 0, None
            if response.status_code >= 400:
                raise _error_for(response)
            return _header_int(response, "Upload-Offset"), _header_int(response, "Upload-Length", required=False)

    def photo_append(self, sha256: str, offset: int, length: int, data: bytes) -> int:
        """PATCH /photos/<sha256> at offset; answers the new offset (length: the server checked the photo)."""
        headers = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset),
                   "Upload-Length": str(length), "Tus-Resumable": "1.0.0"}
        response = self._send(self.upload_session, "PATCH", f"/photos/{sha256}", headers, data)
        with response:
            if response.status_code >= 400:
                raise _error_for(response)
            return _header_int(response, "Upload-Offset")

    def photo_bytes(self, sha256: str, *, thumbnail: bool = False, max_bytes: int = 32 * 1024 * 1024) -> bytes:
        """GET /photos/<sha256> (or its /thumb); the bytes, checked: a full photo must hash to its name.

        Rejected (404) when the server holds no such photo (or not yet all of it), or the user may not see it.
        """
        path = f"/photos/{sha256}" + ("/thumb" if thumbnail else "")
        response = self._send(self.session, "GET", path, {})
        with response:
            if response.status_code >= 400:
                raise _error_for(response)
            data = response.content
        if len(data) > max_bytes:
            raise TransportError(f"GET {path}: {len(data)} bytes, more than the {max_bytes} a photo may have")
        if not thumbnail and hashlib.sha256(data).hexdigest() != sha256:
            raise TransportError(f"GET {path}: the bytes do not hash to the photo's name")
        return data

    def _send(self, session: requests.Session, method: str, path: str, headers: dict[str, str],
              data: bytes | None = None) -> requests.Response:
        if self.token:
            headers = {**headers, "Authorization": f"Bearer {self.token}"}
        try:
            return session.request(method, self.base_url + path, data=data, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise _network_error(f"{method} {path}", exc) from exc

    def _post(self, path: str, payload: Mapping[str, Any], *, auth: bool = True,
              decode: Any = json.loads) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if len(body) > self.gzip_min_bytes:
            # mtime=0: the same payload compresses to the same bytes, which keeps retries identical.
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            # stream: the answer's headers only; its body is read below in one piece, not in requests' 10 KiB
            # chunks, each inflated on its own (a pull page is 250 KB of JSON).
            response = self.session.post(self.base_url + path, data=body, headers=headers, timeout=self.timeout,
                                         stream=True)
        except requests.RequestException as exc:
            raise _network_error(f"POST {path}", exc) from exc
        with response:
            if response.status_code >= 400:
                raise _error_for(response)
            try:
                # Read whole, the connection goes back to the pool for the next request. (An adapter without a
                # socket, as the tests' in-process one, hands over the body already read.)
                raw = response.raw
                data = response.content if raw is None else raw.read(decode_content=True)
            except (Urllib3Error, OSError) as exc:  # cut short, a truncated gzip stream, a timeout mid-way
                raise LinkCut(f"POST {path}: the answer was cut: {exc!r}") from exc
            try:
                if data[:2] == b"\x1f\x8b":
                    # Still gzip: a stack that passed Content-Encoding through without inflating (JSON never
                    # starts with 0x1f). urllib3 inflates it itself.
                    data = gzip.decompress(data)
                answer = decode(data)
            except (ValueError, EOFError, OSError) as exc:
                raise TransportError(f"POST {path}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise TransportError(f"POST {path}: the answer is not a JSON object")
        return answer


class PulledPage(dict):
    """A pull answer as decoded by `decode_pull`: the answer itself, and ``fields_json``, for each change
    in ``changes``, the JSON text of its ``fields`` object exactly as the server wrote it, or None.

    What for: a record the tablet does not hold yet is stored with the state the server sent, and that
    state is the change's fields (mobile/store.py); its text as received is stored instead of the same
    value encoded again, which was a sixth of a first sync's client CPU (issue 19).
    """

    fields_json: list[str | None]


_DECODER = json.JSONDecoder()
_SCAN = make_scanner(_DECODER)  # the decoder's own scanner: value, end = _SCAN(text, start)
# A change as the server writes it (server/sync/service.py, _served_json): compact, kind, id, bucket, then fields.
# A string here has no escapes and no control characters, so the text between the quotes is the string itself.
_CHANGE_HEAD = re.compile(r'\{"kind":"([^"\\\x00-\x1f]*)","id":"([^"\\\x00-\x1f]*)",'
                          r'"bucket":"([^"\\\x00-\x1f]*)","fields":(?=\{)')
_SPACE = re.compile(r"[ \t\n\r]*")
_PAGE_HEAD = '{"changes":['


def decode_pull(data: bytes) -> dict[str, Any]:
    """A pull answer's JSON, decoded as json.loads decodes it; a `PulledPage` when it is laid out as this
    server writes it (``changes`` first), with the text of each change's fields.

    How: the changes array is walked here, a change at a time. A change in the server's layout is read as
    its head (one pattern: kind, id and bucket, strings without escapes) and its fields object, which the
    json module's own scanner decodes and whose end it gives, so the text between the two ends is that
    object's JSON, exactly. A change in any other layout is decoded whole by the same scanner, and its
    text is None (the store encodes its state as before). Anything else (another layout of the answer,
    other bytes than UTF-8, a key twice, JSON that is not) is left to json.loads, so what is accepted and
    refused, and the values decoded, are json.loads' (tests/mobile/test_transport.py).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return json.loads(data)
    if not text.startswith(_PAGE_HEAD):
        return json.loads(data)
    try:
        changes, texts, end = _changes(text, len(_PAGE_HEAD) - 1)
        rest = text[end:]
        if rest.startswith(","):
            others = json.loads("{" + rest[1:])
        elif rest.strip(" \t\n\r") == "}":
            others = {}
        else:
            return json.loads(data)
    except (ValueError, IndexError, StopIteration):  # the scanner raises StopIteration where no value starts
        return json.loads(data)  # raises what json.loads raises for it
    if not others and rest.startswith(",") or "changes" in others:  # a comma before "}"; a key twice (the last is kept)
        return json.loads(data)
    page = PulledPage(changes=changes)
    page.update(others)
    page.fields_json = texts
    return page


def _changes(text: str, at: int) -> tuple[list[Any], list[str | None], int]:
    """The array starting at text[at] ('['): its items, each change's fields text (or None), the index after it."""
    items: list[Any] = []
    texts: list[str | None] = []
    head, scan, space = _CHANGE_HEAD.match, _SCAN, _SPACE.match
    at = space(text, at + 1).end()
    if text[at] == "]":
        return items, texts, at + 1
    while True:
        found = head(text, at)
        if found is not None:
            start = found.end()
            fields, end = scan(text, start)
            if text[end] != "}":  # a key after fields: not the server's layout, decode it whole
                found = None
            else:
                kind, record_id, bucket = found.groups()
                items.append({"kind": kind, "id": record_id, "bucket": bucket, "fields": fields})
                texts.append(text[start:end])
                end += 1
        if found is None:
            item, end = scan(text, at)
            items.append(item)
            texts.append(None)
        if text[end] not in ",]":
            end = space(text, end).end()
        if text[end] == "]":
            return items, texts, end + 1
        if text[end] != ",":
            raise ValueError("a pull answer's changes are not a JSON array")
        at = end + 1
        if text[at] in " \t\n\r":
            at = space(text, at).end()


def _network_error(what: str, exc: requests.RequestException) -> TransportError:
    """LinkCut for a connection that broke mid-way; TransportError for one never made, or a timeout."""
    cut = isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError))
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.exceptions.ConnectTimeout):
        reason = getattr(exc.args[0], "reason", exc.args[0]) if exc.args else None
        cut = not isinstance(reason, (NewConnectionError, ConnectTimeoutError))
    return (LinkCut if cut else TransportError)(f"{what}: {exc}")


def _header_int(response: requests.Response, name: str, *, required: bool = True) -> int | None:
    raw = response.headers.get(name)
    if raw is None and not required:
        return None
    if raw is None or not raw.isdigit():
        raise TransportError(f"the answer's {name} header is {raw!r}, not a number of bytes")
    return int(raw)


def _error_for(response: requests.Response) -> HttpError:
    """The typed error for an error answer, read from the shared error shape when present."""
    status = response.status_code
    code, message, details = "error", response.reason or f"HTTP {status}", None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        details = error.get("details")
    if status == 401:
        return Unauthorized(status, code if code != "error" else "unauthorized", message, details)
    if status == 409 and code == "clock_skew":
        try:
            server_ms = parse_server_time((details or {}).get("server_time"))
        except (ValueError, AttributeError, TypeError):
            return Rejected(status, code, f"{message} (no usable details.server_time)", details)
        return ClockSkew(server_ms, message, details)
    if status == 413:
        return TooLarge(status, code, message, details)
    if 400 <= status < 500:
        return Rejected(status, code, message, details)
    return HttpError(status, code, message, details)
