// Aborting and failing streams against a real `tripstream serve`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TripstreamError, isAbortError, streamPlan } from "../dist/index.js";
import { startServer } from "../support/server.mjs";

const SEOUL = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium" };

describe("abort", () => {
  let server;
  // 20 ms between the offline planner's lines: the stream lasts long enough to be cut mid-draft.
  before(async () => (server = await startServer({ OFFLINE_CHUNK_DELAY_MS: "20" })));
  after(async () => server?.stop());

  test("aborting mid-stream rejects with AbortError, at once, and delivers nothing after", async () => {
    const controller = new AbortController();
    const events = [];
    let abortedAt;
    const started = Date.now();
    // Five days: about 55 lines, over a second at 20 ms a line.
    const result = streamPlan({ ...SEOUL, endDate: "2025-11-14" }, {
      baseUrl: server.baseUrl,
      signal: controller.signal,
      onEvent: (event) => {
        events.push({ event, afterAbort: controller.signal.aborted });
        if (event.type === "chunk" && !controller.signal.aborted) {
          abortedAt = events.length;
          controller.abort();
        }
      },
    });
    const error = await result.then(() => assert.fail("resolved"), (e) => e);
    assert.ok(isAbortError(error), `${error}`);
    assert.equal(error.name, "AbortError");
    assert.equal(events.length, abortedAt, "no event after the abort");
    assert.ok(!events.some((e) => e.event.type === "complete"));
    // The whole stream takes over a second; the abort ended it right away.
    assert.ok(Date.now() - started < 600, `took ${Date.now() - started} ms`);

    // The server is fine and plans the next request in full.
    const plan = await streamPlan(SEOUL, { baseUrl: server.baseUrl });
    assert.equal(plan.days.length, 3);
  });

  test("a signal aborted before the call rejects without a request", async () => {
    let fetched = 0;
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      streamPlan(SEOUL, {
        baseUrl: server.baseUrl,
        signal: controller.signal,
        fetch: (...args) => {
          fetched++;
          return fetch(...args);
        },
      }),
      { name: "AbortError" },
    );
    assert.equal(fetched, 0);
  });

  test("AbortSignal.timeout ends a stream with a TimeoutError", async () => {
    const events = [];
    await assert.rejects(
      // Five days at 20 ms a line take about a second (and a request not made before, so nothing cached).
      streamPlan(
        { location: "Tokyo", startDate: "2025-04-01", endDate: "2025-04-05", budget: "low" },
        { baseUrl: server.baseUrl, signal: AbortSignal.timeout(150), onEvent: (e) => events.push(e) },
      ),
      (e) => isAbortError(e) && e.name === "TimeoutError",
    );
    assert.ok(events.length > 0 && !events.some((e) => e.type === "complete"));
  });
});

describe("an error event", () => {
  let server;
  // A one-second generation limit and 100 ms between lines: the generation times out mid-draft.
  before(async () => (server = await startServer({ OFFLINE_CHUNK_DELAY_MS: "100", GENERATION_TIMEOUT_SECS: "1" })));
  after(async () => server?.stop());

  test("rejects with the event's code, message and retryable, after error and done were delivered", async () => {
    const events = [];
    const ids = [];
    const error = await streamPlan(
      { ...SEOUL, language: "en" },
      {
        baseUrl: server.baseUrl,
        onEvent: (event, meta) => {
          events.push(event);
          ids.push(meta.id);
        },
      },
    ).then(() => assert.fail("resolved"), (e) => e);

    assert.ok(error instanceof TripstreamError, `${error}`);
    assert.equal(error.code, "timeout");
    assert.equal(error.retryable, true);
    assert.equal(error.message, "The request took too long. Please try again.");
    assert.equal(error.streamId, events[0].streamId);
    assert.equal(error.lastEventId, ids.at(-1), "the last id seen (the done message's)");
    assert.deepEqual(events.slice(-2).map((e) => e.type), ["error", "done"]);
    assert.ok(events.some((e) => e.type === "chunk"), "it failed mid-draft");
    assert.ok(!events.some((e) => e.type === "complete"));
  });
});
