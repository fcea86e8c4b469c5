// Accessibility: axe-core (npm) audits the page in a real browser, at desktop and at phone width, in each state
// a person meets: the empty form, a request refused with the field marked, and a finished plan with its maps.
// Any WCAG 2.1 A or AA violation fails the test, listed with the elements it concerns. (A tiled map is audited in
// map.test.mjs; a page of another kind gets the same check with support/browser.mjs's assertAccessible.)
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, SCREENS, assertAccessible, browserAndServer, finished, openPage, plan } from "../support/browser.mjs";

let browser;
let server;
let tileOrigin;
let close;

before(async () => {
  ({ browser, server, tileOrigin, close } = await browserAndServer());
});

after(() => close?.());

describe("accessibility (axe-core, WCAG 2.1 A and AA)", () => {
  for (const screen of SCREENS) {
    for (const lang of ["ko", "en"]) {
      test(`the form, a refused request and a finished plan: ${screen.name}, ${lang}`, async () => {
        const { page, context } = await openPage(browser, server, { ...screen, query: `?lang=${lang}`, tileOrigin });
        await assertAccessible(page, `the form (${screen.name}, ${lang})`);

        await plan(page, { startDate: "2025-11-12", endDate: "2025-11-10" });
        await page.waitForSelector("#error-panel:not([hidden])");
        await assertAccessible(page, `a refused request (${screen.name}, ${lang})`);

        await plan(page, { startDate: "2025-11-10", endDate: "2025-11-12" });
        await finished(page);
        // The first day's tiles are tried once it is in view, and fail (no tile server): the sketch stays.
        await page.locator('figure.day-map[data-day="1"]').scrollIntoViewIfNeeded();
        await page.waitForSelector('figure.day-map[data-day="1"][data-tiles="failed"]');
        await assertAccessible(page, `a finished plan (${screen.name}, ${lang})`);
        await page.screenshot({ path: path.join(ARTIFACTS, `a11y-${screen.name}-${lang}.png`), fullPage: true });
        await context.close();
      });
    }
  }
});
