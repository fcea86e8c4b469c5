// The client against a real `tripstream serve`: the documented event order, the JSON endpoint, the
// destinations, and 4xx answers.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TripstreamError, generatePlan, getCatalog, getHealth, listDestinations, streamPlan } from "../dist/index.js";
import { startServer } from "../support/server.mjs";

const SEOUL = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium" };

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Streams `request`, returning the plan and every event with its SSE id. */
async function collect(request, options = {}) {
  const events = [];
  const plan = await streamPlan(request, {
    baseUrl: server.baseUrl,
    onEvent: (event, meta) => events.push({ event, id: meta.id }),
    ...options,
  });
  return { plan, events };
}

describe("streamPlan against the server", () => {
  test("the Seoul trip arrives in the documented order and progress", async () => {
    const { plan, events } = await collect(SEOUL);
    const types = events.map(({ event }) => event.type);

    // status 10 → progress 20 → status 30 → chunks (31–55) and 3 days → progress 60 → status 65 →
    // progress 70 → status 95 → complete 100 → done.
    const head = events.slice(0, 3).map(({ event }) => [event.type, event.progress, event.step]);
    assert.deepEqual(head, [
      ["status", 10, "gather_context"],
      ["progress", 20, "gather_context"],
      ["status", 30, "generate_draft"],
    ]);
    const tail = events.slice(-6).map(({ event }) => [event.type, event.progress, event.step]);
    assert.deepEqual(tail, [
      ["progress", 60, "generate_draft"],
      ["status", 65, "validate_plan"],
      ["progress", 70, "validate_plan"],
      ["status", 95, "finalize_plan"],
      ["complete", 100, "finalize_plan"],
      ["done", undefined, undefined],
    ]);
    const draft = events.slice(3, -6).map(({ event }) => event);
    assert.ok(draft.every((e) => e.type === "chunk" || e.type === "day"), `draft events: ${types.join(",")}`);
    const chunks = draft.filter((e) => e.type === "chunk");
    const days = draft.filter((e) => e.type === "day");
    assert.ok(chunks.length >= 6, `${chunks.length} chunks`);
    for (const chunk of chunks) {
      assert.equal(chunk.step, "generate_draft");
      assert.ok(chunk.progress >= 31 && chunk.progress <= 55, `chunk progress ${chunk.progress}`);
      assert.equal(typeof chunk.content, "string");
    }
    assert.deepEqual(days.map((e) => e.day.day), [1, 2, 3]);
    assert.deepEqual(days.map((e) => e.day.date), ["2025-11-10", "2025-11-11", "2025-11-12"]);
    // A day's card comes after its text: the draft's last event is day 3.
    assert.equal(draft.at(-1).type, "day");
    assert.match(chunks.map((c) => c.content).join(""), /1일차/);

    // Progress never goes back.
    const progress = events.map(({ event }) => event.progress).filter((p) => p !== undefined);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));

    // Every message has an id: 0, 1, 2, … and the first event names the stream.
    assert.deepEqual(events.map(({ id }) => id), events.map((_, i) => String(i)));
    assert.match(events[0].event.streamId, /^str_/);
    assert.equal(events[0].event.message, "Seoul의 날씨 정보를 수집하고 있습니다...");
    assert.equal(events.at(-2).event.message, "여행 계획 생성 완료!");

    // The result is the complete event's plan, and it holds together.
    assert.deepEqual(plan, events.at(-2).event.plan);
    assert.equal(plan.location, "Seoul");
    assert.equal(plan.currency, "KRW");
    assert.equal(plan.language, "ko");
    assert.equal(plan.days.length, 3);
    for (const day of plan.days) {
      assert.ok(day.activities.length >= 3 && day.activities.length <= 8);
      assert.equal(day.dailyCost, day.activities.reduce((sum, a) => sum + a.cost, 0));
      assert.ok(["forecast", "climatology"].includes(day.weather.source));
    }
    assert.equal(plan.totalCost, plan.days.reduce((sum, d) => sum + d.dailyCost, 0));
    assert.ok(plan.totalCost <= 120000 * 3, `total ${plan.totalCost} within the medium ceiling`);
  });

  test("English and two travellers", async () => {
    const { plan, events } = await collect({ ...SEOUL, language: "en", travelers: 2 });
    assert.equal(events[0].event.message, "Gathering weather for Seoul...");
    assert.equal(events.find((e) => e.event.type === "complete").event.message, "Your travel plan is ready!");
    assert.equal(plan.language, "en");
    assert.equal(plan.travelers, 2);
    assert.match(events.find((e) => e.event.type === "chunk").event.content, /^Day 1/);
  });

  test("an end date before the start date rejects with the server's code, message and field", async () => {
    const events = [];
    const error = await streamPlan(
      { ...SEOUL, startDate: "2025-11-12", endDate: "2025-11-10" },
      { baseUrl: server.baseUrl, onEvent: (e) => events.push(e) },
    ).then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(error instanceof TripstreamError);
    assert.equal(error.code, "invalid_request");
    assert.equal(error.message, "endDate must not be before startDate");
    assert.equal(error.field, "endDate");
    assert.equal(error.status, 422);
    assert.equal(error.retryable, false);
    assert.deepEqual(events, [], "no stream was opened");
  });

  test("an unknown destination is a 4xx with its code", async () => {
    await assert.rejects(
      streamPlan({ ...SEOUL, location: "Atlantis" }, { baseUrl: server.baseUrl }),
      (e) => e instanceof TripstreamError && e.code === "unknown_destination" && e.field === "location" && /Atlantis/.test(e.message),
    );
  });

  test("a field the contract does not know is refused", async () => {
    await assert.rejects(
      streamPlan({ ...SEOUL, budjet: "low" }, { baseUrl: server.baseUrl }),
      (e) => e instanceof TripstreamError && e.code === "invalid_request" && e.field === "budjet",
    );
  });
});

describe("the other endpoints", () => {
  test("generatePlan returns the plan as one document", async () => {
    const plan = await generatePlan({ ...SEOUL, language: "en" }, { baseUrl: `${server.baseUrl}/` });
    assert.equal(plan.days.length, 3);
    assert.equal(plan.language, "en");
    assert.equal(plan.totalCost, plan.days.reduce((sum, d) => sum + d.dailyCost, 0));
  });

  test("generatePlan rejects a bad request with the server's error", async () => {
    await assert.rejects(
      generatePlan({ ...SEOUL, startDate: "2025-11-12", endDate: "2025-11-10" }, { baseUrl: server.baseUrl }),
      { name: "TripstreamError", code: "invalid_request", message: "endDate must not be before startDate", field: "endDate", status: 422 },
    );
  });

  test("listDestinations gives names, currencies and ceilings", async () => {
    const destinations = await listDestinations({ baseUrl: server.baseUrl });
    assert.equal(destinations.length, 12);
    const seoul = destinations.find((d) => d.id === "seoul");
    assert.deepEqual(seoul.name, { en: "Seoul", ko: "서울" });
    assert.equal(seoul.currency, "KRW");
    assert.ok(seoul.budget.low < seoul.budget.medium && seoul.budget.medium < seoul.budget.high);
    assert.deepEqual(
      [...new Set(destinations.map((d) => d.currency))].sort(),
      ["EUR", "JPY", "KRW", "THB", "USD"],
    );
  });

  test("getHealth gives everyone the status, and getCatalog says whether places beyond the list are planned", async () => {
    const health = await getHealth({ baseUrl: server.baseUrl });
    assert.deepEqual(health, { status: "ok" }, "the details are for admins");
    const catalog = await getCatalog({ baseUrl: server.baseUrl });
    assert.equal(catalog.plansAnywhere, false, "the offline planner knows only its list");
    assert.equal(catalog.destinations.length, 12);
  });
});
