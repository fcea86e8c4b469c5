// "Regenerate this day" in a real browser: a plan made on the page, day 2 written again with an instruction
// typed in its card; the card shows the new day (indoor places, as asked), the other days are unchanged, the
// saved plan is at version 2, and the finished page still passes axe. A screenshot goes to e2e/artifacts/.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, assertAccessible, browserAndServer, finished, openPage, plan } from "../support/browser.mjs";

let browser;
let server;
let tileOrigin;
let close;

before(async () => {
  ({ browser, server, tileOrigin, close } = await browserAndServer());
});

after(() => close?.());

/** Each day card's activity names, in order. */
async function dayNames(page) {
  return page.$$eval(".day-card", (cards) => cards.map((card) => [...card.querySelectorAll(".timeline .name")].map((n) => n.textContent)));
}

describe("regenerating a day", () => {
  test("the button on a day card writes that day again with the instruction typed there", async () => {
    const { page, problems } = await openPage(browser, server, { query: "?lang=en", tileOrigin });
    await plan(page, { startDate: "2025-11-10", endDate: "2025-11-12" });
    await finished(page);
    const before = await dayNames(page);
    assert.equal(before.length, 3);
    assert.equal(await page.locator("[data-regenerate]").count(), 3, "one button per day");

    await page.fill("#regen-instruction-2", "indoors, it will rain");
    await page.click('[data-regenerate="2"]');
    await page.waitForFunction(
      (old) => {
        const card = document.querySelector('.day-card[data-day="2"]');
        const names = [...(card?.querySelectorAll(".timeline .name") ?? [])].map((n) => n.textContent);
        return names.length > 0 && JSON.stringify(names) !== JSON.stringify(old);
      },
      before[1],
    );
    await page.waitForSelector('[data-regenerate="2"]:not([disabled])');
    const after = await dayNames(page);
    assert.deepEqual([after[0], after[2]], [before[0], before[2]], "the other days are unchanged");
    const day2 = page.locator('.day-card[data-day="2"]');
    const activities = await day2.locator(".timeline > li").count();
    assert.equal(await day2.locator(".tag.io.indoor").count(), activities, "every place indoors, as asked");
    assert.equal(await page.inputValue("#regen-instruction-2"), "", "the instruction was used");
    assert.equal(await page.locator("#regen-status-2").textContent(), "");
    await page.screenshot({ path: path.join(ARTIFACTS, "regenerate-day.png"), fullPage: true });

    // The page's own session owns the plan, now at version 2, which is what the page shows.
    const planId = await page.evaluate(async () => {
      const list = await (await fetch("/api/v1/plans")).json();
      return list.plans[0].planId;
    });
    const saved = await page.evaluate(async (id) => (await fetch(`/api/v1/plans/${id}`)).json(), planId);
    assert.equal(saved.version, 2);
    assert.deepEqual(saved.plan.days.map((d) => d.activities.map((a) => a.name)), after);

    await assertAccessible(page, "a plan with a regenerated day");
    assert.deepEqual(problems, []);
  });
});
