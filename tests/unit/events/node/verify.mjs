// Reads JSON lines {"secret", "body", "headers"} on stdin; prints one JSON line per input:
// {"ok": true, "id": <the verified event's id>} or {"ok": false, "error": <why>}.
import { createInterface } from "node:readline";
import { Webhook } from "standardwebhooks";

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { secret, body, headers } = JSON.parse(line);
  try {
    const event = new Webhook(secret).verify(body, headers);
    console.log(JSON.stringify({ ok: true, id: event.id }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, error: String(error) }));
  }
}
