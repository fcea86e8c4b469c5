// Reconnection against a real `tripstream serve`, through a proxy that cuts the stream's connection
// mid-message: the client resumes from Last-Event-ID and the events arrive once, in order, to the end.
import assert from "node:assert/strict";
import { after as afterAll, before, describe, test } from "node:test";

import { TripstreamError, isAbortError, streamPlan } from "../dist/index.js";
import { after, inside, startProxy } from "../support/proxy.mjs";
import { startServer } from "../support/server.mjs";

// The server's `retry:` hint, which the client takes as its first wait.
const RETRY_MS = 300;

let server;
let proxy;
before(async () => {
  // 20 ms between the offline planner's lines: the cut lands while the generation is still running, and the
  // resumed stream follows it live. 30 s of grace: the generation waits for the client to come back.
  server = await startServer({ OFFLINE_CHUNK_DELAY_MS: "20", STREAM_CANCEL_GRACE_SECS: "30", SSE_RETRY_MS: String(RETRY_MS) });
  proxy = await startProxy(server.baseUrl);
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

// A different trip for each test, so none joins another's generation or gets a cached replay.
let nextDay = 1;
function trip() {
  const day = String(nextDay++).padStart(2, "0");
  return { location: "Seoul", startDate: `2026-03-${day}`, endDate: `2026-03-${String(nextDay + 1).padStart(2, "0")}`, budget: "medium", language: "en" };
}

/** Timers this process has pending (the client's reconnect wait is one while it waits). */
function pendingTimers() {
  return process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;
}

/** Streams through the proxy, recording events with their ids and every reconnect. */
async function collect(request, options = {}) {
  const events = [];
  const reconnects = [];
  const reconnected = [];
  const plan = await streamPlan(request, {
    baseUrl: proxy.baseUrl,
    onEvent: (event, meta) => events.push({ event, id: meta.id }),
    onReconnect: (info) => reconnects.push(info),
    onReconnected: (info) => reconnected.push(info),
    ...options,
  });
  return { plan, events, reconnects, reconnected };
}

const resumes = (from) => proxy.requests.slice(from).filter((r) => r.method === "GET" && r.url.includes("/api/v1/plans/streams/"));

/** The whole of a stream, once: ids 0..n, the first naming the stream, days 1..3, then complete and done. */
function assertWholeStream(events, plan) {
  assert.deepEqual(events.map(({ id }) => id), events.map((_, i) => String(i)), "every event once, in order");
  assert.match(events[0].event.streamId, /^str_/);
  assert.equal(events[0].event.type, "status");
  assert.deepEqual(events.filter(({ event }) => event.type === "day").map(({ event }) => event.day.day), [1, 2, 3]);
  assert.deepEqual(events.slice(-2).map(({ event }) => event.type), ["complete", "done"]);
  const progress = events.map(({ event }) => event.progress).filter((p) => p !== undefined);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress never goes back");
  // The draft's text is whole: no chunk lost or repeated at the cut.
  const text = events.filter(({ event }) => event.type === "chunk").map(({ event }) => event.content).join("");
  for (const n of [1, 2, 3]) assert.equal(text.split(`Day ${n}`).length - 1, 1, `"Day ${n}" once in the draft`);
  assert.deepEqual(plan, events.at(-2).event.plan);
  assert.equal(plan.days.length, 3);
}

describe("streamPlan resumes a stream cut mid-message", () => {
  test("a connection that drops (network error) inside an event: resumed, nothing lost or repeated", async () => {
    const from = proxy.requests.length;
    proxy.cuts.push({ at: inside("chunk", 3), how: "reset" });
    const { plan, events, reconnects, reconnected } = await collect(trip());

    assertWholeStream(events, plan);
    const streamId = events[0].event.streamId;
    assert.equal(reconnects.length, 1, "one reconnect");
    const [info] = reconnects;
    assert.equal(info.attempt, 1);
    assert.equal(info.streamId, streamId);
    assert.equal(info.delayMs, RETRY_MS, "the server's retry: hint is the first wait");
    assert.equal(info.error.code, "network");
    // The cut was inside the third chunk: the last event delivered before it is the one before.
    const thirdChunk = events.filter(({ event }) => event.type === "chunk")[2];
    assert.equal(info.lastEventId, String(Number(thirdChunk.id) - 1));
    assert.deepEqual(reconnected, [{ attempt: 1, streamId, lastEventId: info.lastEventId }]);

    const [post, ...rest] = proxy.requests.slice(from);
    assert.equal(post.method, "POST");
    assert.ok(post.cut, "the first connection was cut");
    const got = resumes(from);
    assert.equal(got.length, 1);
    assert.equal(got[0].url, `/api/v1/plans/streams/${streamId}/events`);
    assert.equal(got[0].headers["last-event-id"], info.lastEventId);
    assert.equal(got[0].status, 200);
    assert.equal(rest.length, 1);
  });

  test("a response that ends without done, inside an event: the partial event is dropped and sent again", async () => {
    const from = proxy.requests.length;
    proxy.cuts.push({ at: inside("day", 1, 20), how: "end" });
    const { plan, events, reconnects } = await collect(trip());
    assertWholeStream(events, plan);
    assert.equal(reconnects.length, 1);
    assert.equal(reconnects[0].error.code, "stream_ended");
    const firstDay = events.find(({ event }) => event.type === "day");
    assert.equal(reconnects[0].lastEventId, String(Number(firstDay.id) - 1), "the cut day event came with the resumed stream");
    assert.equal(resumes(from).length, 1);
  });

  test("cut again after resuming: resumed twice, each a first try", async () => {
    const from = proxy.requests.length;
    proxy.cuts.push({ at: inside("chunk", 2), how: "reset" }, { at: inside("day", 2), how: "end" });
    const { plan, events, reconnects } = await collect(trip());
    assertWholeStream(events, plan);
    assert.deepEqual(reconnects.map((r) => r.attempt), [1, 1], "a resumed stream that delivered events resets the count");
    assert.deepEqual(reconnects.map((r) => r.delayMs), [RETRY_MS, RETRY_MS]);
    const got = resumes(from);
    assert.equal(got.length, 2);
    assert.deepEqual(got.map((r) => r.headers["last-event-id"]), reconnects.map((r) => r.lastEventId));
    assert.ok(Number(reconnects[1].lastEventId) > Number(reconnects[0].lastEventId));
  });

  test("aborting while waiting to reconnect stops it: AbortError, at once, and no resume request", async () => {
    const from = proxy.requests.length;
    proxy.cuts.push({ at: inside("chunk", 2), how: "reset" });
    const controller = new AbortController();
    let waitingSince;
    const events = [];
    const timersBefore = pendingTimers();
    const error = await streamPlan(trip(), {
      baseUrl: proxy.baseUrl,
      signal: controller.signal,
      onEvent: (event) => events.push(event),
      onReconnect: () => {
        waitingSince = Date.now();
        setTimeout(() => controller.abort(), 50);
      },
    }).then(() => assert.fail("resolved"), (e) => e);
    assert.ok(isAbortError(error), `${error}`);
    assert.equal(error.name, "AbortError");
    assert.ok(waitingSince, "it was waiting to reconnect");
    assert.ok(Date.now() - waitingSince < RETRY_MS, `rejected ${Date.now() - waitingSince} ms into a ${RETRY_MS} ms wait`);
    // Nothing is left to fire: the wait's timer was cleared with the abort. A client that ignored the abort
    // would still hold it, and reconnect when it fired.
    assert.equal(pendingTimers(), timersBefore, "no timer left behind");
    assert.equal(resumes(from).length, 0);
    assert.ok(!events.some((e) => e.type === "complete"));
  });

  test("a stream the server no longer knows (404 on resume) rejects with stream_expired", async () => {
    // The proxy sends the resume to another replica, which never saw the stream.
    const other = await startServer({ SSE_RETRY_MS: String(RETRY_MS) });
    try {
      const from = proxy.requests.length;
      proxy.cuts.push({ at: inside("chunk", 2), how: "reset" });
      const events = [];
      const reconnects = [];
      const error = await streamPlan(trip(), {
        baseUrl: proxy.baseUrl,
        onEvent: (event, meta) => events.push({ event, id: meta.id }),
        onReconnect: (info) => {
          reconnects.push(info);
          proxy.setTarget(other.baseUrl);
        },
      }).then(() => assert.fail("resolved"), (e) => e);
      assert.ok(error instanceof TripstreamError, `${error}`);
      assert.equal(error.code, "stream_expired");
      assert.equal(error.status, 404);
      assert.equal(error.retryable, true, "starting over may work");
      assert.equal(error.streamId, events[0].event.streamId);
      assert.equal(error.lastEventId, events.at(-1).id);
      assert.match(error.message, /can no longer be resumed/);
      assert.equal(reconnects.length, 1, "a 404 is not tried again");
      assert.deepEqual(resumes(from).map((r) => r.status), [404]);
    } finally {
      proxy.setTarget(server.baseUrl);
      await other.stop();
    }
  });

  test("an error event, then a cut before done: rejects with the error, no reconnect", async () => {
    const from = proxy.requests.length;
    proxy.cuts.push({ at: after("error"), how: "reset" });
    const events = [];
    const reconnects = [];
    const error = await streamPlan(trip(), {
      baseUrl: proxy.baseUrl,
      onEvent: (event) => {
        events.push(event);
        // Cancel the generation once it is drafting: listeners get an `error` (cancelled), then `done`.
        if (event.type === "chunk" && events.filter((e) => e.type === "chunk").length === 1) {
          void fetch(`${server.baseUrl}/api/v1/plans/streams/${events[0].streamId}/cancel`, {
            method: "POST",
            headers: { "X-Resume-Token": events[0].resumeToken },
          });
        }
      },
      onReconnect: (info) => reconnects.push(info),
    }).then(() => assert.fail("resolved"), (e) => e);
    assert.ok(error instanceof TripstreamError, `${error}`);
    assert.equal(error.code, "cancelled");
    assert.equal(events.at(-1).type, "error");
    assert.ok(proxy.requests[from].cut, "the connection was cut after the error event, before done");
    assert.deepEqual(reconnects, []);
    assert.equal(resumes(from).length, 0);
  });

  test("a 4xx on the POST is not retried", async () => {
    const from = proxy.requests.length;
    const reconnects = [];
    await assert.rejects(
      streamPlan({ ...trip(), endDate: "2026-02-01" }, { baseUrl: proxy.baseUrl, onReconnect: (info) => reconnects.push(info) }),
      { name: "TripstreamError", code: "invalid_request", status: 422 },
    );
    assert.deepEqual(reconnects, []);
    assert.equal(proxy.requests.length - from, 1);
  });
});
