// Calendar files through the client against a real `tripstream serve`: `calendarUrl` for the caller's plan
// and for a share link, `getCalendar` with the page session that owns the plan, and the errors of someone
// else's plan and of a revoked link.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TripstreamError, calendarUrl, generatePlan, getCalendar, revokeShare, sharePlan } from "../dist/index.js";
import { pageSession, startServer } from "../support/server.mjs";

const PARIS = { location: "Paris", startDate: "2025-10-24", endDate: "2025-10-28", budget: "medium", language: "en" };

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe("calendar files", () => {
  test("calendarUrl names the plan's and the share link's calendar.ics", () => {
    assert.equal(calendarUrl({ planId: "plan_X" }), "/api/v1/plans/plan_X/calendar.ics");
    assert.equal(calendarUrl({ shareId: "shr_Y" }, { baseUrl: "https://t.example/" }), "https://t.example/api/v1/shares/shr_Y/calendar.ics");
    assert.equal(calendarUrl({ planId: "a/b" }), "/api/v1/plans/a%2Fb/calendar.ics");
  });

  test("getCalendar reads the owner's plan and a share link's, and fails like the API for others", async () => {
    const owner = await pageSession(server.baseUrl);
    const plan = await generatePlan(PARIS, owner);
    assert.match(plan.planId, /^plan_[0-9A-Z]{26}$/);
    const ics = await getCalendar({ planId: plan.planId }, owner);
    assert.match(ics, /^BEGIN:VCALENDAR\r\n/);
    assert.ok(ics.includes("\r\nTZID:Europe/Paris\r\n"), ics);
    const events = ics.match(/\r\nBEGIN:VEVENT\r\n/g).length;
    assert.equal(events, plan.days.reduce((n, day) => n + day.activities.length, 0));

    const stranger = await pageSession(server.baseUrl);
    await assert.rejects(getCalendar({ planId: plan.planId }, stranger), (e) => e instanceof TripstreamError && e.status === 404 && e.code === "plan_not_found");

    const share = await sharePlan(plan.planId, owner);
    assert.equal(await getCalendar({ shareId: share.shareId }, { baseUrl: server.baseUrl }), ics);
    await revokeShare(share.shareId, owner);
    await assert.rejects(getCalendar({ shareId: share.shareId }, { baseUrl: server.baseUrl }), (e) => e instanceof TripstreamError && e.code === "share_not_found");
  });
});
