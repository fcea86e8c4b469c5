// "Add to calendar" in a real browser: after a plan completes, the page links its saved plan's calendar.ics
// (owned by the page's session), and clicking it downloads the file; a share link's page links the share's
// calendar, which anyone can fetch. The file has one event per activity in the destination's time zone.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, browserAndServer, fetchPlan, finished, openPage, plan } from "../support/browser.mjs";

const REQUEST = { location: "Paris", startDate: "2025-10-24", endDate: "2025-10-28", budget: "medium" };

let browser;
let server;
let tileOrigin;
let close;

before(async () => {
  ({ browser, server, tileOrigin, close } = await browserAndServer());
});

after(() => close?.());

function events(ics) {
  return (ics.match(/\r\nBEGIN:VEVENT\r\n/g) ?? []).length;
}

describe("add to calendar", () => {
  test("the page links the plan's calendar for its owner, and a share link's for anyone", async () => {
    const expected = await fetchPlan(server, { ...REQUEST, language: "en" });
    const activities = expected.days.reduce((n, day) => n + day.activities.length, 0);

    const owner = await openPage(browser, server, { query: "?lang=en", tileOrigin });
    assert.equal(await owner.page.locator("#calendar").count(), 0, "nothing to add before a plan");
    await plan(owner.page, REQUEST);
    await finished(owner.page);
    const link = owner.page.locator("#calendar");
    assert.equal((await link.textContent()).trim(), "Add to calendar");
    const href = await link.getAttribute("href");
    assert.match(href, /^\/api\/v1\/plans\/plan_[0-9A-Z]{26}\/calendar\.ics$/);
    await owner.page.locator("#summary").screenshot({ path: path.join(ARTIFACTS, "calendar-link.png") });

    // Clicking it downloads the file, with the page's session (which owns the plan).
    const [download] = await Promise.all([owner.page.waitForEvent("download"), link.click()]);
    assert.equal(download.suggestedFilename(), "paris-2025-10-24.ics");
    const answer = await owner.context.request.get(`${server.baseUrl}${href}`);
    assert.equal(answer.status(), 200);
    assert.equal(answer.headers()["content-type"], "text/calendar; charset=utf-8");
    const ics = await answer.text();
    assert.ok(ics.includes("\r\nTZID:Europe/Paris\r\n"), ics);
    assert.equal(events(ics), activities);
    // Without the session it is someone else's plan.
    assert.equal((await fetch(`${server.baseUrl}${href}`)).status, 404);

    // A share link's page links the share's calendar, which needs no session.
    await owner.page.click("#share");
    const sharePath = new URL(await owner.page.locator("#share-url").inputValue()).pathname;
    const visitor = await openPage(browser, server, { path: sharePath, query: "?lang=en", tileOrigin });
    await visitor.page.waitForSelector("#summary");
    const shared = await visitor.page.locator("#calendar").getAttribute("href");
    assert.equal(shared, `/api/v1/shares/${sharePath.slice("/p/".length)}/calendar.ics`);
    const publicIcs = await fetch(`${server.baseUrl}${shared}`);
    assert.equal(publicIcs.status, 200);
    assert.equal(await publicIcs.text(), ics);
    assert.deepEqual([...owner.problems, ...visitor.problems], []);
    await owner.context.close();
    await visitor.context.close();
  });
});
