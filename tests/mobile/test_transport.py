"""HttpTransport against a real HTTP server on 127.0.0.1: retries, gzip, timeouts, error mapping,
and a whole sync over HTTP against the in-memory server."""

from __future__ import annotations

import gzip
import json
import socket
import time

import pytest

from mobile.sync import synchronize
from mobile.transport import (
    ClockSkew, HttpError, HttpTransport, LinkCut, Rejected, TooLarge, TransportError, Unauthorized,
    parse_server_time,
)

from .conftest import NODE, event_values
from .fakes import DAY_MS, T0, FakeServer, LocalHttpServer, error_body, serve_fake

PULL_OK = (200, {"changes": [], "cursors": {"ref": "1"}, "more": False, "hlc": None}, {})


def scripted(*answers):
    """A responder that plays answers in order; None drops the connection unanswered."""
    queue = list(answers)

    def respond(request):
        return queue.pop(0) if queue else (500, error_body("internal_error", "script exhausted"), {})

    return respond


def transport(server: LocalHttpServer, **kwargs) -> HttpTransport:
    options = {"retries": 3, "backoff_factor": 0, "timeout": (2, 2)}
    options.update(kwargs)
    return HttpTransport(server.url, token="tok", **options)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_5xx_gateway_answer_is_retried(status):
    with LocalHttpServer(scripted((status, error_body("unavailable", "busy"), {}), PULL_OK)) as server:
        with transport(server) as client:
            assert client.pull({}, 10)["cursors"] == {"ref": "1"}
    assert len(server.requests) == 2


def test_a_dropped_connection_is_retried_even_for_a_push():
    answer = (200, {"results": [], "hlc": None}, {})
    with LocalHttpServer(scripted(None, None, answer)) as server:
        with transport(server) as client:
            assert client.push(NODE, [], "2026-11-18T11:06:40.000Z") == {"results": [], "hlc": None}
    assert [r["path"] for r in server.requests] == ["/api/v1/sync/push"] * 3
    assert server.requests[0]["raw"] == server.requests[2]["raw"]  # the same body each time


def test_retries_give_up_with_a_transport_error():
    with LocalHttpServer(scripted(*[None] * 10)) as server:
        with transport(server, retries=2) as client:
            with pytest.raises(TransportError) as caught:
                client.pull({}, 10)
    # Reached, but hung up on each time: a cut link, which synchronize asks again within the sync.
    assert type(caught.value) is LinkCut
    assert len(server.requests) == 3


def test_a_server_that_stays_unavailable_ends_in_an_http_error():
    busy = (503, error_body("unavailable", "the store cannot be read"), {})
    with LocalHttpServer(scripted(*[busy] * 5)) as server:
        with transport(server, retries=2) as client:
            with pytest.raises(HttpError) as caught:
                client.pull({}, 10)
    assert (caught.value.status, caught.value.code) == (503, "unavailable")
    assert len(server.requests) == 3


def test_a_500_is_not_retried():
    with LocalHttpServer(scripted((500, error_body("internal_error", "bug"), {}), PULL_OK)) as server:
        with transport(server) as client, pytest.raises(HttpError):
            client.pull({}, 10)
    assert len(server.requests) == 1


def test_a_server_that_is_not_there_is_a_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpTransport(f"http://127.0.0.1:{port}", retries=1, backoff_factor=0, timeout=(1, 1)) as client:
        with pytest.raises(TransportError):
            client.pull({}, 10)


def test_a_server_too_slow_to_answer_times_out():
    def slow(request):
        time.sleep(0.5)
        return PULL_OK

    with LocalHttpServer(slow) as server:
        with transport(server, retries=1, timeout=(1, 0.2)) as client:
            started = time.monotonic()
            with pytest.raises(TransportError):
                client.pull({}, 10)
            assert time.monotonic() - started < 2
    assert len(server.requests) == 2


def test_large_bodies_are_gzipped_and_small_ones_are_not():
    ok = (200, {"results": [], "hlc": None}, {})
    changes = [{"kind": "event", "id": str(i), "bucket": "grid:G-0101",
                "fields": {"description": ["x" * 100, "h"]}} for i in range(30)]
    with LocalHttpServer(scripted(ok, ok)) as server:
        with transport(server) as client:
            client.push(NODE, changes, "2026-11-18T11:06:40.000Z")
            client.push(NODE, changes[:1], "2026-11-18T11:06:40.000Z")
    big, small = server.requests
    assert big["headers"]["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(big["raw"]))["changes"] == changes
    assert len(big["raw"]) < len(json.dumps(changes)) / 4
    assert "Content-Encoding" not in small["headers"]
    assert json.loads(small["raw"])["changes"] == changes[:1]
    assert big["headers"]["Content-Type"] == "application/json"


def test_the_token_is_sent_as_a_bearer_and_login_replaces_it():
    login = (200, {"token": "fresh", "user": {"id": "u1", "name": "Li", "role": "worker"}, "buckets": ["ref"]}, {})
    with LocalHttpServer(scripted(login, PULL_OK)) as server:
        with HttpTransport(server.url + "/api/v1/", retries=0) as client:
            assert client.login("li", "pw", "tablet 7", NODE)["user"]["name"] == "Li"
            client.pull({"ref": "0"}, 50)
    first, second = server.requests
    assert first["path"] == "/api/v1/auth/device" and "Authorization" not in first["headers"]
    assert first["json"] == {"username": "li", "password": "pw", "device_name": "tablet 7", "node": NODE}
    assert second["headers"]["Authorization"] == "Bearer fresh"
    assert second["json"] == {"cursors": {"ref": "0"}, "limit": 50}


@pytest.mark.parametrize("status, body, error, code", [
    (401, error_body("unauthorized", "log in again"), Unauthorized, "unauthorized"),
    (401, "not json at all", Unauthorized, "unauthorized"),
    (400, error_body("malformed", "bad JSON"), Rejected, "malformed"),
    (403, error_body("forbidden", "not yours"), Rejected, "forbidden"),
    (409, error_body("conflict", "offset mismatch"), Rejected, "conflict"),
    (409, error_body("clock_skew", "ahead", {"server_time": "bad"}), Rejected, "clock_skew"),
    (413, error_body("too_large", "at most 500 changes"), TooLarge, "too_large"),
])
def test_error_answers_map_to_typed_errors(status, body, error, code):
    with LocalHttpServer(scripted((status, body, {}))) as server:
        with transport(server) as client, pytest.raises(error) as caught:
            client.push(NODE, [], "2026-11-18T11:06:40.000Z")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert isinstance(caught.value, TransportError)
    assert len(server.requests) == 1  # a 4xx is an answer, not a failure: never retried


def test_clock_skew_carries_the_server_time():
    body = error_body("clock_skew", "ahead", {"server_time": "2026-11-27T19:48:00.123Z"})
    with LocalHttpServer(scripted((409, body, {}))) as server:
        with transport(server) as client, pytest.raises(ClockSkew) as caught:
            client.push(NODE, [], "2026-11-28T19:48:00.123Z")
    assert caught.value.server_time_ms == parse_server_time("2026-11-27T19:48:00.123Z")
    assert caught.value.server_time_ms % 1000 == 123


@pytest.mark.parametrize("text, ms", [
    ("1970-01-01T00:00:00.000Z", 0),
    ("2026-11-18T11:06:40.000Z", T0),
    ("2026-11-18T11:06:40Z", T0),
    ("2026-11-18T11:06:40.5+00:00", T0 + 500),
])
def test_server_time_parses(text, ms):
    assert parse_server_time(text) == ms


def test_an_answer_that_is_not_the_contract_is_a_transport_error():
    with LocalHttpServer(scripted((200, ["a list"], {}), (200, {"no": "results"}, {}))) as server:
        with transport(server) as client:
            with pytest.raises(TransportError):
                client.pull({}, 10)
            with pytest.raises(TransportError):
                client.push(NODE, [], "2026-11-18T11:06:40.000Z")


def test_a_whole_sync_over_http(store, device_clock, server_clock):
    fake = FakeServer(server_clock)
    device_clock.advance(DAY_MS)  # and with a skewed clock, so the 409 path crosses HTTP too
    for i in range(3):
        store.create("event", event_values(description="x" * 400 + str(i)))
    with serve_fake(fake) as server, HttpTransport(server.url, retries=1, backoff_factor=0) as client:
        answer = client.login("li", "pw", "tablet", store.node)
        store.save_login(server.url, answer["token"], answer["user"], answer["buckets"])
        report = synchronize(store, client, page_limit=2)
        assert report.ok, report.error
        assert report.restamped == 3 and report.pulled == 3 and report.pages == 2
        fake.revoked = True
        store.create("event", event_values())
        report = synchronize(store, client)
    assert report.needs_login and store.counts().unsynced == 1
    pushes = [r for r in server.requests if r["path"].endswith("push")]
    assert [p["headers"].get("Content-Encoding") for p in pushes] == ["gzip", "gzip", None]


# --- a bad link (issue 20) ------------------------------------------------------------------------------

def _raw_server(answer: bytes):
    """A one-connection-at-a-time HTTP server that reads a request and writes ``answer`` bytes, then hangs up."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                             .split(b":")[1])
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_an_answer_cut_after_its_headers_is_a_link_cut():
    body = json.dumps({"changes": [], "cursors": {"ref": "1"}, "more": False, "hlc": None}).encode()
    cut = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (len(body) + 500)
           + body)
    listener, url = _raw_server(cut)
    try:
        with HttpTransport(url, token="tok", retries=1, backoff_factor=0, timeout=(2, 2)) as client:
            with pytest.raises(LinkCut):
                client.pull({}, 10)
    finally:
        listener.close()


def test_a_server_that_cannot_be_reached_is_not_a_link_cut():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with HttpTransport(f"http://127.0.0.1:{port}", retries=0, timeout=(1, 1)) as client:
        with pytest.raises(TransportError) as caught:
            client.pull({}, 10)
    assert not isinstance(caught.value, LinkCut)


def test_the_pull_carries_max_bytes_and_reads_a_gzip_answer():
    page = {"changes": [], "cursors": {"ref": "7"}, "more": False, "hlc": None}
    zipped = gzip.compress(json.dumps(page).encode())
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(zipped)) + zipped
    listener, url = _raw_server(answer)
    try:
        with HttpTransport(url, token="tok", retries=0, timeout=(2, 2)) as client:
            assert client.pull({}, 10, max_bytes=4096)["cursors"] == {"ref": "7"}
    finally:
        listener.close()
    with LocalHttpServer(scripted(PULL_OK)) as server:
        with transport(server) as client:
            client.pull({"ref": "1"}, 10, max_bytes=4096)
        [request] = server.requests
    assert request["json"] == {"cursors": {"ref": "1"}, "limit": 10, "max_bytes": 4096}
    assert "gzip" in request["headers"]["Accept-Encoding"]


def test_a_server_that_predates_max_bytes_is_paged_by_limit_alone():
    unknown = (400, error_body("invalid", "max_bytes: Unknown field.", {"max_bytes": ["Unknown field."]}), {})
    with LocalHttpServer(scripted(unknown, PULL_OK, PULL_OK)) as server:
        with transport(server) as client:
            assert client.pull({}, 10, max_bytes=4096)["cursors"] == {"ref": "1"}
            client.pull({}, 10, max_bytes=4096)
    assert [sorted(r["json"]) for r in server.requests] == [["cursors", "limit", "max_bytes"], ["cursors", "limit"],
                                                             ["cursors", "limit"]]


# --- decoding a pull answer (issue 19: the text of each change's fields is kept) ---------------------------

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mobile.transport import PulledPage, decode_pull  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),  # quotes, backslashes, control characters, non-BMP text, "fields": inside a string
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
_names = st.sampled_from(["event", "grid:G-0101", 'a"b', "a\\b", "tab\t", "中文", "fields", '","fields":'])
_changes = st.lists(st.fixed_dictionaries({
    "kind": _names, "id": _names, "bucket": _names,
    "fields": st.dictionaries(st.text(max_size=8), st.tuples(_json_values, st.just("2026-11-27T19:48:00.123Z-0000-"
                                                                                     "9f86d081884c7d65")).map(list),
                              max_size=4)}) | _json_values, max_size=5)


@settings(max_examples=300)
@given(changes=_changes, rest=st.dictionaries(st.text(max_size=8), _json_values, max_size=3),
       ascii=st.booleans(), compact=st.booleans())
@example(changes=[{"kind": "event", "id": "event", "bucket": "中文", "fields": {}}], rest={}, ascii=True, compact=True)
def test_a_pull_answer_decodes_as_json_loads_decodes_it_and_keeps_each_fields_text(changes, rest, ascii, compact):
    """Law: decode_pull answers what json.loads answers, for any answer; laid out as the server writes it, it
    also gives, for each change of the server's form, the exact text its fields were decoded from."""
    answer = {"changes": changes, **rest}
    data = json.dumps(answer, ensure_ascii=ascii, separators=(",", ":") if compact else None).encode()
    decoded = decode_pull(data)
    assert decoded == json.loads(data)
    if compact:
        assert isinstance(decoded, PulledPage) and len(decoded.fields_json) == len(changes)
        for change, text in zip(changes, decoded.fields_json):
            if text is not None:
                assert json.loads(text) == change["fields"]
                assert text == json.dumps(change["fields"], ensure_ascii=ascii, separators=(",", ":"))
            elif isinstance(change, dict) and list(change) == ["kind", "id", "bucket", "fields"] and not any(
                    json.dumps(change[k], ensure_ascii=ascii)[1:-1] != change[k] for k in ("kind", "id", "bucket")):
                # (a head whose strings are written with an escape — a quote, a backslash, a control character,
                # or any non-ASCII character when ensure_ascii is on — is decoded whole, without its text)
                raise AssertionError(f"a change of the server's form came without its text: {change!r}")


@pytest.mark.parametrize("data", [
    b'{"changes":[{"kind":"event","id":"x","bucket":"b","fields":{}}',  # cut short
    b'{"changes":[{"kind":"event","id":"x","bucket":"b","fields":{"a":[1,"h"]}}]}}',  # one brace too many
    b'{"changes":[{"kind":"event","id":"x","bucket":"b","fields":{"a":[1,"h"]}},]}',  # a trailing comma
    b'{"changes":[1 2]}', b'{"changes":[],}', b'{"changes":[]', b'{"changes":[\x00]}', b'\xff\xfe',
])
def test_what_json_loads_refuses_decode_pull_refuses(data):
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(ValueError):
        decode_pull(data)


def test_an_answer_with_changes_twice_decodes_as_json_loads_decodes_it():
    data = b'{"changes":[{"kind":"a","id":"b","bucket":"c","fields":{}}],"more":false,"changes":[]}'
    assert decode_pull(data) == json.loads(data) == {"changes": [], "more": False}


def test_pulls_read_whole_go_on_over_one_kept_alive_connection():
    """The answer's body is read in one piece (stream=True): the connection must still go back to the pool."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections = []
    page = json.dumps({"changes": [{"kind": "event", "id": "x", "bucket": "grid:G-0101", "fields": {}}],
                       "cursors": {"ref": "1"}, "more": False, "hlc": None}, separators=(",", ":")).encode()

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            connections.append(self.client_address)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", token="tok", timeout=(2, 2)) as client:
            answers = [client.pull({}, 10) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
    assert all(a["changes"][0]["id"] == "x" and a.fields_json == ["{}"] for a in answers)
    assert len(connections) == 1

