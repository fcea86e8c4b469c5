// regenerateDay through the client, against a real `tripstream serve`: one day of a saved plan written again,
// streamed like a generation, the other days kept, the plan at its next version; and its errors.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TripstreamError, generatePlan, getPlan, regenerateDay } from "../dist/index.js";
import { pageSession, startServer } from "../support/server.mjs";

const SEOUL = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium", language: "en" };

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** The page's session, as a browser would hold it after loading `/`. */
const session = () => pageSession(server.baseUrl);

async function rejectsWith(promise, code, status, field) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof TripstreamError, String(error));
    assert.deepEqual([error.code, error.status, error.field], [code, status, field]);
    return true;
  });
}

describe("regenerateDay", () => {
  test("writes one day again as the plan's next version, streamed like a generation", async () => {
    const mine = await session();
    const generated = await generatePlan(SEOUL, mine);
    const events = [];
    const plan = await regenerateDay(generated.planId, 2, {
      ...mine,
      instruction: "indoors, it will rain",
      onEvent: (event) => events.push(event),
    });
    const types = events.map((e) => e.type);
    assert.equal(types[0], "status");
    assert.deepEqual(types.slice(-2), ["complete", "done"]);
    const days = events.filter((e) => e.type === "day").map((e) => e.day);
    assert.deepEqual(days.map((d) => d.day), [2]);
    assert.equal(events.find((e) => e.type === "complete").planId, generated.planId);

    assert.deepEqual([plan.days[0], plan.days[2]], [generated.days[0], generated.days[2]]);
    assert.notDeepEqual(plan.days[1], generated.days[1]);
    assert.ok(plan.days[1].activities.every((a) => a.indoor), JSON.stringify(plan.days[1]));
    const saved = await getPlan(generated.planId, mine);
    assert.equal(saved.version, 2);
    assert.deepEqual(saved.plan, plan);
  });

  test("someone else's plan, a missing day and a long instruction are refused", async () => {
    const mine = await session();
    const { planId } = await generatePlan(SEOUL, mine);
    await rejectsWith(regenerateDay(planId, 1, await session()), "plan_not_found", 404, undefined);
    await rejectsWith(regenerateDay(planId, 4, mine), "invalid_request", 422, "day");
    await rejectsWith(regenerateDay(planId, 1, { ...mine, instruction: "x".repeat(201) }), "invalid_request", 422, "instruction");
    assert.equal((await getPlan(planId, mine)).version, 1);
  });
});
