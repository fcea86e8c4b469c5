// EventSource semantics, with a real EventSource implementation (the `eventsource` package, WHATWG
// semantics) against a real `tripstream serve`: `id:` lines become lastEventId, the `retry:` hint sets the
// reconnection delay, a reconnect sends Last-Event-ID and gets only what it missed, and 204 stops it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { EventSource } from "eventsource";
import { startServer } from "../support/server.mjs";

let server;
before(async () => {
  // A short retry hint so the reconnect happens within the test.
  server = await startServer({ SSE_RETRY_MS: "200", STREAM_CANCEL_GRACE_SECS: "30", OFFLINE_CHUNK_DELAY_MS: "5" });
});
after(async () => {
  await server?.stop();
});

const query = "location=Seoul&startDate=2025-11-10&endDate=2025-11-12&budget=medium&language=en";

test("a stream read by EventSource arrives once, in order, and a reconnect after done is told to stop", async () => {
  const requests = [];
  const es = new EventSource(`${server.baseUrl}/api/v1/plans/generate/stream?${query}`, {
    fetch: (url, init) => {
      requests.push(new Headers(init?.headers).get("last-event-id"));
      return fetch(url, init);
    },
  });
  const received = [];
  const closed = new Promise((resolve) => {
    es.onmessage = (e) => received.push({ id: e.lastEventId, data: JSON.parse(e.data) });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) resolve();
    };
  });
  await closed;

  const ids = received.map((m) => Number(m.id));
  assert.deepEqual(ids, ids.map((_, i) => i), "every event once, ids 0..n in order");
  assert.equal(received.at(-1).data.type, "done");
  assert.equal(received.at(-2).data.type, "complete");
  assert.equal(received.filter((m) => m.data.type === "day").length, 3);
  // The server closed after done; EventSource reconnected with Last-Event-ID and got 204, which stops it.
  assert.deepEqual(requests, [null, String(ids.at(-1))]);
});

test("a connection cut mid-stream is resumed from Last-Event-ID by EventSource itself", async () => {
  let connections = 0;
  const es = new EventSource(`${server.baseUrl}/api/v1/plans/generate/stream?${query}&travelers=2`, {
    fetch: async (url, init) => {
      connections += 1;
      const response = await fetch(url, init);
      if (connections > 1 || !response.body) return response;
      // The first connection breaks after a few messages, as a phone changing networks would.
      const reader = response.body.getReader();
      let seen = 0;
      const cut = new ReadableStream({
        async pull(controller) {
          const { done, value } = await reader.read();
          seen += value ? new TextDecoder().decode(value).split("\n\n").length - 1 : 0;
          if (done || seen >= 6) {
            await reader.cancel();
            controller.error(new Error("network changed"));
            return;
          }
          controller.enqueue(value);
        },
      });
      return new Response(cut, { status: response.status, headers: response.headers });
    },
  });
  const received = [];
  await new Promise((resolve) => {
    es.onmessage = (e) => {
      received.push({ id: e.lastEventId, data: JSON.parse(e.data) });
      if (JSON.parse(e.data).type === "done") {
        es.close();
        resolve();
      }
    };
  });
  assert.ok(connections >= 2, "EventSource reconnected");
  const ids = received.map((m) => Number(m.id));
  assert.deepEqual(ids, ids.map((_, i) => i), "no event lost or repeated across the reconnect");
  assert.equal(received.at(-2).data.type, "complete");
});
