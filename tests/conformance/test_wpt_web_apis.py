"""WPT's testharness files for the scripts' Web APIs (Headers, Response, encoding, streams, abort,
...), run unchanged inside one sandboxed script per API by harness.run_wpt_files.

Each API lists the WPT files it runs. A file absent from the WPT tree (``WEXEC_WPT``, default
``../shared/wpt``; see ``wpt/README.md``) skips its API with the list of what is missing, rather than failing.
"""

from __future__ import annotations

import pytest

from tests.conformance.harness import check, node_wpt_outcome, run_wpt_files, wpt_files_present

SUITES = {
    "Headers (WPT files)": [
        "fetch/api/headers/headers-basic.any.js",
        "fetch/api/headers/header-setcookie.any.js",
    ],
    "Response (WPT files)": [
        "fetch/api/response/response-static-json.any.js",
    ],
    "TextDecoder (WPT files)": [
        "encoding/textdecoder-streaming.any.js",
    ],
    "AbortSignal (WPT files)": [
        "dom/abort/AbortSignal.any.js",
        "dom/abort/event.any.js",
    ],
    "Event (WPT files)": [
        "dom/events/Event-constructors.any.js",
        "dom/events/AddEventListenerOptions-signal.any.js",
    ],
}


@pytest.mark.parametrize("api", list(SUITES))
def test_wpt_files(sandbox: object, api: str) -> None:
    files = SUITES[api]
    missing = wpt_files_present(files)
    if missing:
        pytest.skip(f"{api}: WPT files not in the tree: {', '.join(missing)}")
    outcome = run_wpt_files(sandbox, api, files)
    outcome.node_failed = node_wpt_outcome(files, outcome.total)
    check(outcome)
