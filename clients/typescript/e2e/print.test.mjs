// "Print / Save as PDF" in a real browser: Chromium prints the finished plan to an A4 PDF, and poppler's
// pdfinfo and pdftotext (Debian's poppler-utils) read it back: the summary and tips on the first page, then
// one day per page, and nothing of the form or the buttons. The PDF, its pages as PNGs and a print-media
// screenshot go to e2e/artifacts/.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, browserAndServer, fetchPlan, finished, openPage, pdfPageText as pageText, pdfPages, plan, poppler } from "../support/browser.mjs";

const REQUEST = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-13", budget: "medium", language: "en" };
const A4_POINTS = [595, 842];

let browser;
let server;
let tileOrigin;
let close;

before(async () => {
  ({ browser, server, tileOrigin, close } = await browserAndServer());
});

after(() => close?.());

describe("printing the plan", () => {
  test("gives A4 pages: the summary first, then one day per page, with its sketch and without form or buttons", async () => {
    const { page, context, problems } = await openPage(browser, server, { query: "?lang=en", tileOrigin });
    const expected = await fetchPlan(server, REQUEST);
    assert.equal(expected.days.length, 4);
    // The first day made as long as the rules allow (8 activities), so the test shows that still fits a page.
    const first = expected.days[0];
    const last = first.activities.at(-1);
    first.activities.push({ ...last, name: "Evening walk by the palace wall", time: "21:00", location: { lat: 37.5765, lon: 126.9745 } });
    assert.equal(first.activities.length, 8);
    await page.route("**/api/v1/plans/generate/stream", async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/^data: (.*"type":"complete".*)$/m, (_, json) => {
        const event = JSON.parse(json);
        event.plan.days[0] = first;
        return `data: ${JSON.stringify(event)}`;
      });
      await route.fulfill({ response, body });
    });
    await plan(page, REQUEST);
    await finished(page);
    assert.equal(await page.locator('.day-card[data-day="1"] .activity').count(), 8);

    // The button opens the browser's print dialog (stubbed here: headless Chromium has none).
    await page.evaluate(() => {
      window.__printed = 0;
      window.print = () => window.__printed++;
    });
    await page.click("#print");
    assert.equal(await page.evaluate(() => window.__printed), 1);

    await page.emulateMedia({ media: "print" });
    for (const hidden of ["#plan-form", ".topbar", "#print", "#progress-panel", "#draft-panel"]) {
      assert.ok(await page.locator(hidden).isHidden(), `${hidden} is not printed`);
    }
    assert.equal(await page.locator("svg.sketch:visible").count(), expected.days.length, "every day's sketch prints");
    await page.screenshot({ path: path.join(ARTIFACTS, "plan-print.png"), fullPage: true });

    const pdf = path.join(ARTIFACTS, "plan.pdf");
    await page.pdf({ path: pdf, preferCSSPageSize: true, printBackground: true });
    const { pages, size, info } = pdfPages(pdf);
    assert.equal(pages, 1 + expected.days.length, `the summary, then one page per day:\n${info}`);
    assert.deepEqual(size, A4_POINTS, "A4");
    poppler("pdftoppm", ["-r", "60", "-png", pdf, path.join(ARTIFACTS, "plan-pdf")]);

    const cover = pageText(pdf, 1);
    assert.ok(cover.includes(expected.title), cover);
    assert.match(cover, /Trip total/);
    for (const tip of expected.tips) assert.ok(cover.includes(tip.replace(/\s+/g, " ").slice(0, 40)), `the tip "${tip}" is on the first page`);
    for (const [i, day] of expected.days.entries()) {
      const text = pageText(pdf, i + 2);
      assert.ok(text.includes(`Day ${day.day} `), `page ${i + 2} is day ${day.day}: ${text}`);
      assert.ok(text.includes(day.theme), `day ${day.day}'s theme`);
      for (const activity of day.activities) assert.ok(text.includes(activity.name), `${activity.name} on day ${day.day}'s page`);
      for (const other of expected.days.filter((d) => d !== day)) {
        assert.ok(!text.includes(`Day ${other.day} `), `day ${other.day} is not on day ${day.day}'s page`);
      }
    }
    for (let n = 1; n <= pages; n++) {
      const text = pageText(pdf, n);
      for (const control of ["Plan my trip", "Print / Save as PDF", "Destination", "한국어"]) {
        assert.ok(!text.includes(control), `"${control}" is not printed (page ${n})`);
      }
    }
    assert.deepEqual(problems, []);
    await context.close();
  });
});
