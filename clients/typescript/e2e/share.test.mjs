// Share links in a real browser: a plan generated on the page is shared with its Share button; the link opens
// in another browser context (someone else, no session) as the plan alone, read-only, with an Open Graph
// preview in the served HTML; printed, it is one day per A4 page; axe finds no WCAG 2.1 A/AA violation at
// desktop or phone width; revoked by its owner, the link is a 404 page that says so. Screenshots and the PDF go
// to e2e/artifacts/.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, SCREENS, assertAccessible, browserAndServer, finished, openPage, pdfPageText, pdfPages, plan } from "../support/browser.mjs";

const REQUEST = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-13", budget: "medium" };

let browser;
let server;
let tileOrigin;
let close;

before(async () => {
  ({ browser, server, tileOrigin, close } = await browserAndServer());
});

after(() => close?.());

describe("sharing a plan", () => {
  test("Share gives a link that shows the plan read-only, prints a day per page, passes axe, and dies when revoked", async () => {
    const owner = await openPage(browser, server, { query: "?lang=en", tileOrigin });
    await plan(owner.page, REQUEST);
    await finished(owner.page);
    const days = await owner.page.locator(".day-card").count();
    assert.equal(days, 4);

    await owner.page.click("#share");
    const url = await owner.page.locator("#share-url").inputValue();
    assert.match(url, new RegExp(`^${server.baseUrl}/p/shr_[0-9A-Z]{26}$`));
    assert.match(await owner.page.locator("#share-status").textContent(), /Whoever opens it can read the plan/);
    await owner.page.screenshot({ path: path.join(ARTIFACTS, "share-owner.png"), fullPage: true });
    const sharePath = new URL(url).pathname;

    // The served HTML carries the preview, before any script runs.
    const html = await (await fetch(url)).text();
    assert.match(html, /<meta property="og:title" content="Seoul, 4 days">/);
    assert.match(html, /<meta property="og:description" content="[^"]+2025-11-10 – 2025-11-13[^"]+">/);

    for (const screen of SCREENS) {
      // Someone else: a fresh context, without the owner's session.
      const visitor = await openPage(browser, server, { ...screen, path: sharePath, query: "?lang=en", tileOrigin });
      const { page } = visitor;
      await page.waitForSelector("#summary");
      assert.equal(await page.locator(".day-card").count(), days, "every day");
      assert.ok(await page.locator("#plan-form").isHidden(), "no form");
      assert.ok(await page.locator("#progress-panel").isHidden(), "nothing generated");
      assert.equal(await page.locator("#share").count(), 0, "a visitor cannot share it again");
      assert.ok(await page.locator("#shared-head").isVisible());
      assert.equal(await page.title(), "Seoul, 4 days · tripstream");
      assert.ok(!visitor.requests.some((r) => r.includes("/generate")), "no generation was asked for");
      await page.locator('figure.day-map[data-day="1"]').scrollIntoViewIfNeeded();
      await page.waitForSelector('figure.day-map[data-day="1"][data-tiles="failed"]');
      await assertAccessible(page, `a share link (${screen.name})`);
      await page.screenshot({ path: path.join(ARTIFACTS, `share-${screen.name}.png`), fullPage: true });

      if (screen.name === "desktop") {
        await page.emulateMedia({ media: "print" });
        assert.ok(await page.locator("#shared-head").isHidden(), "the banner is not printed");
        await page.screenshot({ path: path.join(ARTIFACTS, "share-print.png"), fullPage: true });
        const pdf = path.join(ARTIFACTS, "share.pdf");
        await page.pdf({ path: pdf, preferCSSPageSize: true, printBackground: true });
        const { pages, info } = pdfPages(pdf);
        assert.equal(pages, 1 + days, `the summary, then one page per day:\n${info}`);
        for (let n = 2; n <= pages; n++) {
          const text = pdfPageText(pdf, n);
          assert.ok(text.includes(`Day ${n - 1} `), `page ${n} is day ${n - 1}: ${text}`);
          assert.ok(!text.includes(`Day ${n} `), `page ${n} holds one day`);
        }
      }
      assert.deepEqual(visitor.problems, []);
      await visitor.context.close();
    }

    // The owner revokes it (the page's own session is the owner); then it is gone.
    const shareId = sharePath.split("/").pop();
    const status = await owner.page.evaluate(
      async (id) => (await fetch(`/api/v1/shares/${id}`, { method: "DELETE" })).status,
      shareId,
    );
    assert.equal(status, 204);
    assert.equal((await fetch(`${server.baseUrl}/api/v1/shares/${shareId}`)).status, 404);
    const gone = await browser.newContext();
    const page = await gone.newPage();
    const response = await page.goto(url);
    assert.equal(response.status(), 404);
    await page.waitForSelector('#shared-head[data-missing="true"]');
    assert.equal(await page.locator(".day-card").count(), 0);
    assert.doesNotMatch(await response.text(), /og:title/);
    await page.screenshot({ path: path.join(ARTIFACTS, "share-revoked.png"), fullPage: true });
    await gone.close();
    assert.deepEqual(owner.problems, []);
    await owner.context.close();
  });
});
