"""Web API bodies and headers over real HTTP: `wexec serve` in a subprocess, httpx as the client.

What only the wire shows: several Set-Cookie headers stay separate header lines, a Response made
from a ReadableStream reaches the client chunk by chunk, and a multipart request body reaches
req.formData()."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import running_server, write_scripts

SCRIPTS = {
    "cookies.js": """
export default () => {
  const headers = new Headers();
  headers.append('Set-Cookie', 'a=1; Path=/');
  headers.append('Set-Cookie', 'b=2; HttpOnly');
  headers.append('X-Seen', String(headers.getSetCookie().length));
  return new Response('ok', { headers });
};
""",
    "stream.js": """
export default () => {
  const enc = new TextEncoder();
  let n = 0;
  return new Response(new ReadableStream({
    async pull(controller) {
      await new Promise((r) => setTimeout(r, 30));
      if (n === 3) return controller.close();
      controller.enqueue(enc.encode('chunk' + n++ + '\\n'));
    },
  }), { status: 201, headers: { 'content-type': 'text/plain' } });
};
""",
    "form.js": """
export default async (req) => {
  const form = await req.formData();
  const file = form.get('upload');
  return { name: form.get('name'), file: file.name, type: file.type, text: await file.text() };
};
""",
    "piped.js": """
export default () => {
  const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); } });
  const source = new ReadableStream({ start(c) { c.enqueue('abc'); c.enqueue('déf'); c.close(); } });
  return new Response(source.pipeThrough(upper).pipeThrough(new TextEncoderStream()));
};
""",
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("web")
    write_scripts(root / "scripts", SCRIPTS)
    with running_server(["--scripts", str(root / "scripts"), "--data", str(root / "data")]) as url:
        yield url


def test_two_set_cookie_headers_are_two_header_lines(base: str) -> None:
    r = httpx.get(f"{base}/cookies")
    assert r.status_code == 200
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert r.headers["x-seen"] == "2"
    assert set(r.cookies.keys()) == {"a", "b"}


def test_a_stream_body_reaches_the_client_in_chunks(base: str) -> None:
    with httpx.stream("GET", f"{base}/stream") as r:
        assert r.status_code == 201
        assert r.headers["content-type"] == "text/plain"
        chunks = list(r.iter_raw())
    assert b"".join(chunks) == b"chunk0\nchunk1\nchunk2\n"
    assert len(chunks) >= 2  # the 30 ms pauses come between chunks on the wire


def test_a_piped_stream_is_the_body(base: str) -> None:
    r = httpx.get(f"{base}/piped")
    assert r.content == "ABCDÉF".encode()


def test_multipart_request_body_reaches_form_data(base: str) -> None:
    r = httpx.post(
        f"{base}/form",
        data={"name": "Zoë"},
        files={"upload": ("notes.txt", b"line 1\nline 2", "text/plain")},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Zoë", "file": "notes.txt", "type": "text/plain", "text": "line 1\nline 2"}
