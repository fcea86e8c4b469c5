// What the SSE parsing copes with, against a tiny local HTTP server that writes exactly the bytes a test
// wants: `\r\n` line endings, multi-line `data:`, a last event without its blank line, comments, bytes split
// anywhere, ids and `Last-Event-ID`, and broken answers.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";

import { TripstreamError, streamPlan } from "../dist/index.js";

const REQUEST = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-10", budget: "low" };

const PLAN = {
  id: "pln_test",
  title: "서울 1일 여행",
  location: "Seoul",
  destination: { name: "서울", country: "KR", lat: 37.5665, lon: 126.978, timezone: "Asia/Seoul" },
  startDate: "2025-11-10",
  endDate: "2025-11-10",
  budget: "low",
  travelers: 1,
  currency: "KRW",
  language: "ko",
  days: [],
  totalCost: 0,
  tips: [],
  warnings: [],
  metadata: {},
};

const status = { type: "status", message: "서울의 날씨 정보를 수집하고 있습니다...", progress: 10, step: "gather_context", streamId: "str_x" };
const chunk = { type: "chunk", content: "1일차 — 종로 (₩3,000)\n", progress: 31, step: "generate_draft" };
const complete = { type: "complete", message: "여행 계획 생성 완료!", progress: 100, step: "finalize_plan", plan: PLAN };
const done = { type: "done" };

const message = (event, id, eol = "\n") => `${id === undefined ? "" : `id: ${id}${eol}`}data: ${JSON.stringify(event)}${eol}${eol}`;

/** What the next request gets: a function `(req, res)`; the last request's headers are kept. */
let respond;
let lastHeaders;
let server;
let baseUrl;

before(async () => {
  server = http.createServer((req, res) => {
    lastHeaders = req.headers;
    req.resume();
    req.on("end", () => respond(req, res));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Answers with an event stream whose body is `parts`, written one after another with a pause between. */
function sse(parts, { pause = 0, contentType = "text/event-stream; charset=utf-8" } = {}) {
  respond = async (_req, res) => {
    res.writeHead(200, { "content-type": contentType, "cache-control": "no-cache" });
    for (const part of parts) {
      res.write(part);
      if (pause) await new Promise((r) => setTimeout(r, pause));
    }
    res.end();
  };
}

async function run(options = {}) {
  const events = [];
  const ids = [];
  const plan = await streamPlan(REQUEST, {
    baseUrl,
    onEvent: (event, meta) => {
      events.push(event);
      ids.push(meta.id);
    },
    ...options,
  });
  return { plan, events, ids };
}

describe("SSE parsing", () => {
  test("\\r\\n line endings", async () => {
    sse([message(status, 0, "\r\n") + message(chunk, 1, "\r\n") + message(complete, 2, "\r\n") + message(done, 3, "\r\n")]);
    const { plan, events, ids } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "chunk", "complete", "done"]);
    assert.deepEqual(ids, ["0", "1", "2", "3"]);
    assert.deepEqual(plan, PLAN);
    assert.equal(events[1].content, chunk.content);
  });

  test("a lone \\r as the line ending", async () => {
    sse([message(status, 0, "\r") + message(complete, 1, "\r") + message(done, 2, "\r")]);
    const { events } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "complete", "done"]);
  });

  test("data spread over several data: lines is one event", async () => {
    const pretty = JSON.stringify(complete, null, 2).split("\n").map((line) => `data: ${line}`).join("\n");
    sse([message(status, 0), `id: 1\n${pretty}\n\n`, message(done, 2)]);
    const { plan, events } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "complete", "done"]);
    assert.deepEqual(plan, PLAN);
  });

  test("a last event without the trailing blank line", async () => {
    sse([message(status, 0), message(chunk, 1), `id: 2\ndata: ${JSON.stringify(complete)}`]);
    const { plan, events, ids } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "chunk", "complete"]);
    assert.deepEqual(ids, ["0", "1", "2"]);
    assert.deepEqual(plan, PLAN);
  });

  test("a last event ended by one newline only", async () => {
    sse([message(status, 0), `data: ${JSON.stringify(complete)}\n`]);
    const { plan } = await run();
    assert.deepEqual(plan, PLAN);
  });

  test("comments (: keep-alive) between and before messages are skipped", async () => {
    sse([": keep-alive\n\n", message(status, 0), ": keep-alive\n", ":\n\n", message(complete, 1), ": keep-alive\n\n", message(done, 2)], { pause: 5 });
    const { events } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "complete", "done"]);
  });

  test("bytes split anywhere, even inside a UTF-8 character", async () => {
    const body = Buffer.from(message(status, 0, "\r\n") + message(chunk, 1) + message(complete, 2) + message(done, 3));
    const parts = [];
    for (let i = 0; i < body.length; i += 7) parts.push(body.subarray(i, i + 7));
    sse(parts);
    const { events } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "chunk", "complete", "done"]);
    assert.equal(events[0].message, status.message);
    assert.equal(events[1].content, chunk.content);
  });

  test("one byte at a time, with pauses", async () => {
    const body = Buffer.from(message(chunk, 7) + message(complete, 8));
    const parts = [...body].map((b) => Buffer.from([b]));
    sse(parts.slice(0, 40).concat([Buffer.concat(parts.slice(40))]), { pause: 1 });
    const { events, ids } = await run();
    assert.deepEqual(events.map((e) => e.type), ["chunk", "complete"]);
    assert.deepEqual(ids, ["7", "8"]);
  });

  test("events of unknown types, named events and retry fields are passed over", async () => {
    sse([
      "retry: 3000\n\n",
      message({ type: "heartbeat", at: 1 }, 0),
      `event: note\ndata: ${JSON.stringify(status)}\n\n`,
      message(complete, 2),
      message(done, 3),
    ]);
    const { events } = await run();
    assert.deepEqual(events.map((e) => e.type), ["status", "complete", "done"]);
  });

  test("nothing after done is delivered", async () => {
    sse([message(complete, 0), message(done, 1), message(status, 2)]);
    const { events } = await run();
    assert.deepEqual(events.map((e) => e.type), ["complete", "done"]);
  });
});

describe("ids and Last-Event-ID", () => {
  test("lastEventId is sent as the Last-Event-ID header", async () => {
    sse([message(complete, 42), message(done, 43)]);
    await run({ lastEventId: "41" });
    assert.equal(lastHeaders["last-event-id"], "41");
    assert.equal(lastHeaders["content-type"], "application/json");
    assert.match(lastHeaders.accept, /text\/event-stream/);
  });

  test("no Last-Event-ID header unless asked", async () => {
    sse([message(complete, 0)]);
    await run();
    assert.equal(lastHeaders["last-event-id"], undefined);
  });

  test("a dropped connection, with reconnection off, rejects as retryable network error with the last id seen", async () => {
    respond = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(message(status, 0) + message(chunk, 1));
      setTimeout(() => res.socket.destroy(), 50);
    };
    const events = [];
    const error = await streamPlan(REQUEST, { baseUrl, maxReconnects: 0, onEvent: (e) => events.push(e) }).then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(error instanceof TripstreamError, `${error}`);
    assert.equal(error.code, "network");
    assert.equal(error.retryable, true);
    assert.equal(error.lastEventId, "1");
    assert.equal(error.streamId, "str_x");
    assert.deepEqual(events.map((e) => e.type), ["status", "chunk"]);
  });

  test("a stream that ends without a result, with reconnection off, rejects with stream_ended", async () => {
    sse([message(status, 0), message(chunk, 1)]);
    await assert.rejects(run({ maxReconnects: 0 }), { name: "TripstreamError", code: "stream_ended", retryable: true, lastEventId: "1" });
  });
});

describe("broken answers", () => {
  test("an error event without retryable uses the code's default", async () => {
    sse([message({ type: "error", message: "모델 응답이 올바르지 않습니다.", error: "llm_bad_output" }, 0), message(done, 1)]);
    await assert.rejects(run(), { name: "TripstreamError", code: "llm_bad_output", retryable: false, message: "모델 응답이 올바르지 않습니다." });
  });

  test("data that is not JSON", async () => {
    sse(["data: {not json\n\n"]);
    await assert.rejects(run(), { name: "TripstreamError", code: "bad_response" });
  });

  test("a 200 that is not an event stream", async () => {
    sse(["<html></html>"], { contentType: "text/html" });
    await assert.rejects(run(), { name: "TripstreamError", code: "bad_response", status: 200 });
  });

  test("a 5xx without the JSON error body is a retryable http_error", async () => {
    respond = (_req, res) => {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end("Bad Gateway from a proxy");
    };
    await assert.rejects(run(), (e) => e instanceof TripstreamError && e.code === "http_error" && e.status === 502 && e.retryable && /Bad Gateway/.test(e.message));
  });

  test("a 4xx with the JSON error body", async () => {
    respond = (_req, res) => {
      res.writeHead(413, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "invalid_request", message: "body over 16 KiB", field: null } }));
    };
    const error = await run().then(() => assert.fail("resolved"), (e) => e);
    assert.equal(error.code, "invalid_request");
    assert.equal(error.status, 413);
    assert.equal(error.field, undefined);
    assert.equal(error.retryable, false);
  });

  test("a server that is not there is a network error", async () => {
    const closed = http.createServer();
    await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address();
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(streamPlan(REQUEST, { baseUrl: `http://127.0.0.1:${port}` }), { name: "TripstreamError", code: "network", retryable: true });
  });
});
