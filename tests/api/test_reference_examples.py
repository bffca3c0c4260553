"""The reference's curl examples for these endpoints (exec-http-skill.md, examples 1, 2, 3, 5,
10 and the writes of 9 and 11), run by bash exactly as written there, `KIT` aside: a client
written for the reference works against wexec unchanged. The examples send no token, so they run
against a server without one, on loopback."""

from __future__ import annotations

import json
import os
import subprocess

from tests.api.conftest import Server


def run(api: Server, script: str) -> str:
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "KIT": api.base})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_example_1_write_invoke_read_back(open_api: Server) -> None:
    written = json.loads(run(open_api, r"""
curl -sX POST "$KIT/api/v1/exec/scripts/write" \
  -H 'Content-Type: application/json' \
  -d '{
    "path": "echo.js",
    "content": "module.exports = (req, res) => res.json({ ok: true, body: req.body });\n"
  }'
"""))
    assert written["success"] is True and written["validated"] is True
    assert written["shape"] == "commonjs"  # run as it is: never rewritten
    invoked = run(open_api, r"""
curl -sX POST "$KIT/echo" \
  -H 'Content-Type: application/json' \
  -d '{"hello":"world"}'
""")
    assert json.loads(invoked) == {"ok": True, "body": {"hello": "world"}}
    content = run(open_api, r"""
curl -sf "$KIT/api/v1/exec/scripts/read?path=echo.js" | jq .content
""")
    assert json.loads(content) == \
        "module.exports = (req, res) => res.json({ ok: true, body: req.body });\n"


def test_example_2_workflow(open_api: Server) -> None:
    out = run(open_api, r"""
curl -sX POST "$KIT/api/v1/exec/scripts/write" \
  -H 'Content-Type: application/json' \
  --data-binary @- <<'JSON'
{
  "path": "workflow.js",
  "content": "module.exports = async (req, res) => {\n  const callA = async () => ({ score: 0.91, label: 'spam' });\n  const checkB = async (a) => ({ verdict: a.score > 0.8 ? 'block' : 'allow' });\n  const actC  = async (v) => ({ executed: v === 'block' ? 'quarantined' : 'delivered' });\n  const a = await callA();\n  const b = await checkB(a);\n  const c = await actC(b.verdict);\n  res.json({ a, b, c });\n};\n"
}
JSON
echo
curl -sX POST "$KIT/workflow" -H 'Content-Type: application/json' -d '{}'
""")
    written, answer = out.splitlines()
    assert json.loads(written)["success"] is True
    assert json.loads(answer) == {"a": {"score": 0.91, "label": "spam"},
                                  "b": {"verdict": "block"}, "c": {"executed": "quarantined"}}


def test_example_3_webhook_with_hmac(open_api: Server) -> None:
    written = run(open_api, r"""
curl -sX POST "$KIT/api/v1/exec/scripts/write" \
  -H 'Content-Type: application/json' \
  --data-binary @- <<'JSON'
{
  "path": "webhook.js",
  "content": "const crypto = require('crypto');\nconst SECRET = process.env.WEBHOOK_SECRET || 'shhh-test';\nmodule.exports = async (req, res) => {\n  const sig = req.headers['x-hub-signature-256'] || '';\n  const body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body || {});\n  const expect = 'sha256=' + crypto.createHmac('sha256', SECRET).update(body).digest('hex');\n  let ok = false;\n  try { ok = sig.length === expect.length && crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(expect)); } catch {}\n  if (!ok) return res.status(401).json({ error: 'bad sig' });\n  res.json({ accepted: true, payload: req.body });\n};\n"
}
JSON
""")
    assert json.loads(written)["validation"]["results"]["dependencies"]["builtin"] == ["crypto"]
    signed = run(open_api, r"""
BODY='{"event":"push","ref":"main"}'
SIG="sha256=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac 'shhh-test' | awk '{print $2}')"
curl -sX POST "$KIT/webhook" \
  -H 'Content-Type: application/json' \
  -H "X-Hub-Signature-256: $SIG" \
  -d "$BODY"
""")
    assert json.loads(signed) == {"accepted": True, "payload": {"event": "push", "ref": "main"}}


def test_example_5_validate_only(open_api: Server) -> None:
    out = run(open_api, r"""
CODE='// @cors *
// @timeout 5000
// @description Greeting handler
module.exports = (req, res) => res.json({ hi: 1 });'

# Full validation: syntax + TS transpile + deps + magic comments
curl -sX POST "$KIT/api/v1/exec/validate/script" \
  -H 'Content-Type: application/json' \
  -d "$(jq -nc --arg c "$CODE" '{code:$c}')"
echo
# Just the magic-comment parser
curl -sX POST "$KIT/api/v1/exec/validate/magic-comments" \
  -H 'Content-Type: application/json' \
  -d "$(jq -nc --arg c "$CODE" '{code:$c}')"
""")
    full, magic = map(json.loads, out.splitlines())
    assert full["valid"] is True
    assert set(full["results"]) == {"syntax", "typescript", "dependencies", "magicComments"}
    assert magic["valid"] is True and magic["magicComments"]["description"] == "Greeting handler"


def test_the_writes_of_examples_9_10_11_and_the_delete(open_api: Server) -> None:
    """Their scripts use what wexec has not (Bun.$, the AI helpers): the writes,
    which these endpoints own, behave as documented; `scripts.delete` stops the schedule."""
    out = run(open_api, r"""
curl -sX POST "$KIT/api/v1/exec/scripts/write" \
  -H 'Content-Type: application/json' \
  --data-binary @- <<'JSON'
{
  "path": "tick.js",
  "content": "// @schedule */5 * * * *\n// @description Heartbeat — fires every 5 minutes\nmodule.exports = async (req, res) => {\n  console.log('[tick] fired at', new Date().toISOString());\n  res.json({ ok: true, ts: Date.now() });\n};\n"
}
JSON
echo
curl -sX POST "$KIT/api/v1/exec/scripts/write" -H 'Content-Type: application/json' --data-binary @- <<'JSON'
{
  "path": "summarize.js",
  "content": "// @ai-model openai/gpt-4o\n// @description One-line summary via built-in Hoody AI (no key/setup)\nmodule.exports = async (req, res) => {\n  const text = metadata.query.q || 'Say hello in one sentence.';\n  const result = await ai.generate('Summarize in one line: ' + text);\n  res.json({ summary: result.text });\n};\n"
}
JSON
echo
curl -sX POST "$KIT/api/v1/exec/scripts/write" \
  -H 'Content-Type: application/json' \
  --data-binary @- <<'JSON'
{
  "path": "disk-usage.js",
  "content": "module.exports = async (req, res) => {\n  const out = await Bun.$`df -h --output=source,size,used,avail,target /`.text();\n  res.json({ disk: out.trim().split('\\n').slice(1).map(l => l.split(/\\s+/)) });\n};\n"
}
JSON
echo
curl -s -X DELETE "$KIT/api/v1/exec/scripts/delete?path=tick.js&confirm=true"
""")
    tick, summarize, disk, deleted = map(json.loads, out.splitlines())
    assert tick["success"] and tick["route"] == "/tick"
    assert summarize["success"] and disk["success"]
    assert deleted == {"success": True, "path": "tick.js", "deleted": True}


def test_example_10_schedule_list_trigger_history(open_api: Server) -> None:
    """Steps 1 to 3 as written, but for the trigger's path: the reference's absolute path is its
    own server's, so the relative one (which step 3 also allows) is sent."""
    out = run(open_api, r"""
curl -sX POST "$KIT/api/v1/exec/scripts/write" \
  -H 'Content-Type: application/json' \
  --data-binary @- <<'JSON' > /dev/null
{
  "path": "tick.js",
  "content": "// @schedule */5 * * * *\n// @description Heartbeat — fires every 5 minutes\nmodule.exports = async (req, res) => {\n  console.log('[tick] fired at', new Date().toISOString());\n  res.json({ ok: true, ts: Date.now() });\n};\n"
}
JSON
curl -sf "$KIT/api/v1/exec/schedules/list" \
  | jq -c '.schedules[] | {scriptRel, expression, registeredAt}'
curl -sX POST "$KIT/api/v1/exec/schedules/trigger" \
  -H 'Content-Type: application/json' \
  -d '{"scriptPath":"tick.js","force":true}'
echo
curl -sf "$KIT/api/v1/exec/schedules/history?limit=5" | jq -c '.entries[]'
curl -s -X DELETE "$KIT/api/v1/exec/scripts/delete?path=tick.js&confirm=true" > /dev/null
curl -sf "$KIT/api/v1/exec/schedules/list" | jq -c '[.schedules[].scriptRel]'
""")
    listed, triggered, entry, after = map(json.loads, out.splitlines())
    assert listed["scriptRel"] == "tick.js" and listed["expression"] == "*/5 * * * *"
    assert listed["registeredAt"].endswith("Z")
    assert triggered["triggered"] is True and triggered["status"] == "ok"
    assert isinstance(triggered["runId"], str) and triggered["durationMs"] >= 0
    assert entry["runId"] == triggered["runId"] and entry["scriptRel"] == "tick.js"
    assert after == []
