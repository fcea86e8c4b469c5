// Reconnection's rules, against a tiny local server that answers each request as a test scripts it: the
// waits (the `retry:` hint as the base, doubling, capped), the tries used up, 204 and 4xx/5xx on resume,
// repeated ids skipped, and when the client must not reconnect at all.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";

import { TripstreamError, streamPlan } from "../dist/index.js";

const REQUEST = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-10", budget: "low" };
const PLAN = { id: "pln_test", title: "서울 1일 여행", days: [], totalCost: 0, currency: "KRW" };

const status = { type: "status", message: "…", progress: 10, step: "gather_context" };
const chunk = (n) => ({ type: "chunk", content: `line ${n}\n`, progress: 30 + n, step: "generate_draft" });
const complete = { type: "complete", message: "done!", progress: 100, step: "finalize_plan", plan: PLAN };
const done = { type: "done" };
const message = (event, id) => `id: ${id}\ndata: ${JSON.stringify(event)}\n\n`;

/** The answers, one per request in order; every request is recorded. */
let script;
let requests;
let server;
let baseUrl;

before(async () => {
  server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, lastEventId: req.headers["last-event-id"], at: Date.now() });
    req.resume();
    req.on("end", () => {
      const answer = script.shift();
      if (!answer) {
        res.writeHead(500).end("unscripted request");
        return;
      }
      answer(res);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  script = [];
  requests = [];
});

/** An event stream of `body`; `then`: "end" (close the response) or "drop" (end the connection mid-body). */
const stream = (body, { then = "end", streamId = "str_x" } = {}) => (res) => {
  res.writeHead(200, { "content-type": "text/event-stream", ...(streamId ? { "x-stream-id": streamId } : {}) });
  if (then === "end") res.end(body);
  else res.write(body, () => res.socket.end());
};
const answer = (code, body = "", type = "application/json") => (res) => {
  res.writeHead(code, { "content-type": type }).end(body);
};

async function run(options = {}) {
  const events = [];
  const reconnects = [];
  const result = await streamPlan(REQUEST, {
    baseUrl,
    onEvent: (event, meta) => events.push([event.type, meta.id]),
    onReconnect: (info) => reconnects.push(info),
    ...options,
  }).then(
    (plan) => ({ plan }),
    (error) => ({ error }),
  );
  return { ...result, events, reconnects };
}

describe("resuming", () => {
  test("the retry: hint is the first wait; the resume sends Last-Event-ID to the stream's events URL", async () => {
    script.push(
      stream(`retry: 40\n\n${message(status, 0)}${message(chunk(1), 1)}id: 2\ndata: {"type":"chu`),
      stream(message(chunk(2), 2) + message(complete, 3) + message(done, 4)),
    );
    const { plan, events, reconnects } = await run();
    assert.deepEqual(plan, PLAN);
    assert.deepEqual(events, [["status", "0"], ["chunk", "1"], ["chunk", "2"], ["complete", "3"], ["done", "4"]]);
    assert.equal(reconnects.length, 1);
    assert.deepEqual({ ...reconnects[0], error: reconnects[0].error.code }, {
      attempt: 1,
      delayMs: 40,
      lastEventId: "1",
      streamId: "str_x",
      error: "stream_ended",
    });
    assert.deepEqual(requests.map((r) => [r.method, r.url, r.lastEventId]), [
      ["POST", "/api/v1/plans/generate/stream", undefined],
      ["GET", "/api/v1/plans/streams/str_x/events", "1"],
    ]);
    assert.ok(requests[1].at - requests[0].at >= 35, `waited ${requests[1].at - requests[0].at} ms`);
  });

  test("the stream id comes from the first event when the header is missing", async () => {
    script.push(
      stream(message({ ...status, streamId: "str_from_event" }, 0), { streamId: null }),
      stream(message(complete, 1) + message(done, 2)),
    );
    const { plan } = await run({ reconnectDelayMs: 1 });
    assert.deepEqual(plan, PLAN);
    assert.equal(requests[1].url, "/api/v1/plans/streams/str_from_event/events");
  });

  test("without a retry: hint, reconnectDelayMs is the base; waits double and stop at maxReconnectDelayMs", async () => {
    script.push(
      stream(message(status, 0), { then: "drop" }),
      answer(503, JSON.stringify({ error: { code: "internal", message: "restarting" } })),
      answer(502, "Bad Gateway", "text/plain"),
      (res) => res.socket.destroy(),
      stream(message(complete, 1) + message(done, 2)),
    );
    const { plan, events, reconnects } = await run({ reconnectDelayMs: 10, maxReconnectDelayMs: 30 });
    assert.deepEqual(plan, PLAN);
    assert.deepEqual(events.map(([, id]) => id), ["0", "1", "2"]);
    assert.deepEqual(reconnects.map((r) => [r.attempt, r.delayMs, r.error.code]), [
      [1, 10, "network"],
      [2, 20, "internal"],
      [3, 30, "http_error"],
      [4, 30, "network"],
    ]);
    assert.ok(reconnects.every((r) => r.lastEventId === "0"));
  });

  test("the tries used up: rejects with the break's code, the last failure and the last id", async () => {
    script.push(
      stream(message(status, 0) + message(chunk(1), 1), { then: "drop" }),
      answer(503, "busy", "text/plain"),
      answer(503, "still busy", "text/plain"),
    );
    const { error, reconnects } = await run({ maxReconnects: 2, reconnectDelayMs: 5 });
    assert.ok(error instanceof TripstreamError, `${error}`);
    assert.equal(error.code, "network");
    assert.equal(error.retryable, true);
    assert.equal(error.lastEventId, "1");
    assert.equal(error.streamId, "str_x");
    assert.match(error.message, /not resumed after 2 tries \(the last: HTTP 503.*still busy\)/);
    assert.deepEqual(reconnects.map((r) => r.attempt), [1, 2]);
    assert.equal(requests.length, 3);
  });

  test("ids the client already has are skipped when a resumed stream repeats them", async () => {
    script.push(
      stream(message(status, 0) + message(chunk(1), 1) + message(chunk(2), 2)),
      stream(message(chunk(1), 1) + message(chunk(2), 2) + message(chunk(3), 3) + message(complete, 4) + message(done, 5)),
    );
    const { events } = await run({ reconnectDelayMs: 1 });
    assert.deepEqual(events.map(([, id]) => id), ["0", "1", "2", "3", "4", "5"]);
  });

  test("204 on resume with no plan received rejects clearly", async () => {
    script.push(stream(message(status, 0)), answer(204));
    const { error } = await run({ reconnectDelayMs: 1 });
    assert.equal(error.code, "stream_ended");
    assert.match(error.message, /over on the server, but its plan was not received/);
    assert.equal(error.lastEventId, "0");
    assert.equal(requests.length, 2, "204 is not tried again");
  });

  test("a 4xx other than 404 on resume is not tried again", async () => {
    script.push(
      stream(message(status, 0)),
      answer(400, JSON.stringify({ error: { code: "invalid_request", message: "bad Last-Event-ID" } })),
    );
    const { error } = await run({ reconnectDelayMs: 1 });
    assert.equal(error.code, "invalid_request");
    assert.equal(error.status, 400);
    assert.equal(error.streamId, "str_x");
    assert.equal(requests.length, 2);
  });

  test("404 on resume is stream_expired", async () => {
    script.push(
      stream(message(status, 0) + message(chunk(1), 1)),
      answer(404, JSON.stringify({ error: { code: "not_found", message: 'no stream "str_x": unknown, or expired' } })),
    );
    const { error, reconnects } = await run({ reconnectDelayMs: 1 });
    assert.equal(error.code, "stream_expired");
    assert.equal(error.status, 404);
    assert.equal(error.retryable, true);
    assert.equal(error.lastEventId, "1");
    assert.match(error.message, /can no longer be resumed: no stream "str_x": unknown, or expired/);
    assert.equal(reconnects.length, 1);
  });

  test("a plan received, then a cut before done: resolves, no reconnect", async () => {
    script.push(stream(message(status, 0) + message(complete, 1), { then: "drop" }));
    const { plan, reconnects } = await run();
    assert.deepEqual(plan, PLAN);
    assert.deepEqual(reconnects, []);
    assert.equal(requests.length, 1);
  });

  test("an error event, then a close before done: rejects with it, no reconnect", async () => {
    script.push(stream(message(status, 0) + message({ type: "error", message: "too slow", error: "timeout", retryable: true }, 1)));
    const { error, reconnects } = await run();
    assert.equal(error.code, "timeout");
    assert.deepEqual(reconnects, []);
    assert.equal(requests.length, 1);
  });

  test("no stream id (neither header nor event): nothing to resume", async () => {
    script.push(stream(message(status, 0), { streamId: null }));
    const { error, reconnects } = await run();
    assert.equal(error.code, "stream_ended");
    assert.deepEqual(reconnects, []);
  });

  test("a connection that breaks again before any event counts as another failed try", async () => {
    script.push(
      stream(message(status, 0), { then: "drop" }),
      stream(": keep-alive\n\n", { then: "drop" }),
      stream(message(complete, 1) + message(done, 2)),
    );
    const { plan, reconnects } = await run({ reconnectDelayMs: 5 });
    assert.deepEqual(plan, PLAN);
    assert.deepEqual(reconnects.map((r) => [r.attempt, r.delayMs]), [[1, 5], [2, 10]]);
  });
});
