// Saved plans and share links through the client, against a real `tripstream serve`: the page's session (its
// cookie, sent here as a header) owns what it generates; a share link is read by anyone until revoked.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TripstreamError, generatePlan, getPlan, getSharedPlan, listPlans, revokeShare, sharePlan, streamPlan } from "../dist/index.js";
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

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (error) => error instanceof TripstreamError && error.code === code && error.status === 404);
}

describe("saved plans and share links", () => {
  test("a plan is saved for its caller, read back, shared, and the link revoked", async () => {
    const mine = await session();
    const generated = await generatePlan(SEOUL, mine);
    assert.match(generated.planId, /^plan_[0-9A-Z]{26}$/);

    const saved = await getPlan(generated.planId, mine);
    assert.equal(saved.planId, generated.planId);
    assert.equal(saved.version, 1);
    assert.deepEqual(saved.plan.days, generated.days);
    assert.equal((await getPlan(generated.planId, { ...mine, version: 1 })).version, 1);
    await rejectsWith(getPlan(generated.planId, { ...mine, version: 2 }), "plan_not_found");
    assert.deepEqual(
      (await listPlans(mine)).map((p) => p.planId),
      [generated.planId],
    );

    // Someone else (another session, or nobody) finds nothing.
    const theirs = await session();
    await rejectsWith(getPlan(generated.planId, theirs), "plan_not_found");
    await rejectsWith(getPlan(generated.planId, { baseUrl: server.baseUrl }), "plan_not_found");
    assert.deepEqual(await listPlans(theirs), []);
    await rejectsWith(sharePlan(generated.planId, theirs), "plan_not_found");

    // The stream names the same saved plan on `complete` (a cache hit: no copy).
    let streamed;
    await streamPlan(SEOUL, { ...mine, onEvent: (event) => event.type === "complete" && (streamed = event.planId) });
    assert.equal(streamed, generated.planId);

    const link = await sharePlan(generated.planId, mine);
    assert.match(link.shareId, /^shr_[0-9A-Z]{26}$/);
    assert.equal(link.url, `/p/${link.shareId}`);
    const shared = await getSharedPlan(link.shareId, { baseUrl: server.baseUrl });
    assert.deepEqual(shared.plan.days, generated.days);

    await rejectsWith(revokeShare(link.shareId, theirs), "share_not_found");
    await revokeShare(link.shareId, mine);
    await rejectsWith(getSharedPlan(link.shareId, { baseUrl: server.baseUrl }), "share_not_found");
  });
});
