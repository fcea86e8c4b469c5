// The page at `/` in a real browser: headless Chromium (Debian's `chromium`) driven by playwright-core,
// against a real `tripstream serve` whose map tiles are unreachable. Screenshots of the finished plan go to
// e2e/artifacts/ (git-ignored). The day maps, printing and accessibility have their own files.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, browserAndServer, finished, openPage as open, plan } from "../support/browser.mjs";

let server;
let browser;
/** Where the map's tiles are said to be: nobody answers there. */
let tileOrigin;
let close;

before(async () => {
  // 15 ms between the offline planner's lines: slow enough to watch the draft and day cards arrive.
  ({ browser, server, tileOrigin, close } = await browserAndServer({ OFFLINE_CHUNK_DELAY_MS: "15" }));
});

after(() => close?.());

function openPage(options = {}) {
  return open(browser, server, { tileOrigin, ...options });
}

/** Records, from inside the page, what appeared while the stream ran: progress values, draft text, draft cards. */
async function watch(page) {
  await page.evaluate(() => {
    const seen = { progress: [], draftText: false, draftCards: 0 };
    window.__seen = seen;
    const bar = document.getElementById("progress-bar");
    const note = (value) => {
      if (seen.progress.at(-1) !== value) seen.progress.push(value);
    };
    // Every value the bar held, even when a busy machine delivers several events in one task and the
    // observer runs once for all of them: each change's record keeps the value it replaced.
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target === bar && r.attributeName === "aria-valuenow" && r.oldValue !== null) note(Number(r.oldValue));
      }
      note(Number(bar.getAttribute("aria-valuenow")));
      if (document.getElementById("draft").textContent.length > 0) seen.draftText = true;
      seen.draftCards = Math.max(seen.draftCards, document.querySelectorAll(".day-card.draft").length);
    }).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeOldValue: true,
      characterData: true,
    });
  });
}

describe("the page", () => {
  test("plans the Seoul trip: progress to 100 %, the draft and day cards as they stream, then the plan", async () => {
    const { page, context, requests, problems } = await openPage({ query: "?lang=ko" });
    await watch(page);
    await plan(page);
    await finished(page);

    const seen = await page.evaluate(() => window.__seen);
    assert.equal(seen.progress.at(-1), 100);
    assert.deepEqual(seen.progress, [...seen.progress].sort((a, b) => a - b), "the bar only moves forward");
    assert.ok(seen.progress.length >= 8, `the bar moved through the steps: ${seen.progress}`);
    assert.ok(seen.draftText, "the draft text appeared while streaming");
    assert.ok(seen.draftCards >= 1, "day cards appeared from day events before the final plan");

    assert.equal(await page.textContent("#progress-pct"), "100%");
    assert.equal(await page.textContent("#progress-message"), "여행 계획 생성 완료!");
    assert.equal(await page.locator(".day-card.draft").count(), 0, "the final plan replaced the draft cards");
    const cards = page.locator(".day-card");
    assert.equal(await cards.count(), 3);
    for (let i = 0; i < 3; i++) {
      const card = cards.nth(i);
      assert.equal(await card.locator(".day-num").textContent(), `${i + 1}일차`);
      assert.ok((await card.locator(".activity").count()) >= 3);
      assert.match(await card.locator(".day-cost").textContent(), /^₩[\d,]+$/);
      assert.match(await card.locator(".wx-temp").textContent(), /^-?\d+° \/ -?\d+°C$/);
      assert.match(await card.locator(".wx-rain").textContent(), /^강수 \d+%$/);
      assert.equal(await card.locator(".wx-source").textContent(), "평년값");
    }
    assert.match(await page.textContent("#total-amount"), /^₩[\d,]+$/);
    // Medium in Seoul: ₩120,000 a day per person, 3 days, 1 traveller.
    assert.match(await page.textContent(".budget-line"), /₩360,000/);
    assert.match(await page.textContent(".verdict"), /예산 안/);
    assert.equal(await page.textContent(".plan-title"), "서울 3일 여행");

    await page.screenshot({ path: path.join(ARTIFACTS, "plan.png"), fullPage: true });
    const elsewhere = requests.filter((url) => ![server.baseUrl, tileOrigin, "data:"].some((start) => url.startsWith(start)));
    assert.deepEqual(elsewhere, [], "only its own origin, and the map's tile host");
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("fits a 375 px phone screen", async () => {
    const { page, context, problems } = await openPage({ width: 375, height: 812, query: "?lang=ko" });
    await plan(page);
    await finished(page);
    assert.equal(await page.locator(".day-card").count(), 3);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling (${overflow} px too wide)`);
    await page.screenshot({ path: path.join(ARTIFACTS, "plan-375.png"), fullPage: true });
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("the language switch changes the page and the plan's language", async () => {
    const { page, context, problems } = await openPage({ query: "?lang=ko" });
    assert.equal(await page.textContent("#submit"), "여행 계획 만들기");
    assert.equal(await page.textContent('label[for="location"]'), "여행지");

    await page.click('button[data-lang="en"]');
    assert.equal(await page.getAttribute("html", "lang"), "en");
    assert.equal(await page.textContent("#submit"), "Plan my trip");
    assert.equal(await page.textContent('label[for="location"]'), "Destination");
    assert.equal(await page.getAttribute('button[data-lang="en"]', "aria-pressed"), "true");
    assert.equal(await page.inputValue("#location"), "Seoul", "a known destination follows the language");

    await plan(page, { location: "Tokyo", startDate: "2025-04-01", endDate: "2025-04-02", budget: "low" });
    await finished(page);
    assert.equal(await page.textContent("#progress-message"), "Your travel plan is ready!");
    assert.equal(await page.locator(".day-card").first().locator(".day-num").textContent(), "Day 1");
    assert.match(await page.textContent("#total-amount"), /^¥[\d,]+$/);

    // Back to Korean: the page's words switch, the plan stays.
    await page.click('button[data-lang="ko"]');
    assert.equal(await page.textContent("#submit"), "여행 계획 만들기");
    assert.equal(await page.locator(".day-card").first().locator(".day-num").textContent(), "1일차");
    assert.equal(await page.inputValue("#location"), "도쿄");
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("the browser's language is the default", async () => {
    const { page, context } = await openPage({ locale: "en-US" });
    assert.equal(await page.textContent("#submit"), "Plan my trip");
    await context.close();
  });

  test("an invalid request shows the server's message, and retry works once it is fixed", async () => {
    const { page, context } = await openPage({ query: "?lang=en" });
    await plan(page, { startDate: "2025-11-12", endDate: "2025-11-10" });
    await page.waitForSelector("#error-panel:not([hidden])");
    assert.equal(await page.textContent("#error-title"), "Please check your request");
    assert.equal(await page.textContent("#error-message"), "endDate must not be before startDate");
    assert.equal(await page.getAttribute("#endDate", "aria-invalid"), "true");
    assert.match(await page.textContent("#endDate-error"), /endDate must not be before startDate/);
    assert.equal(await page.locator("#summary").count(), 0);
    assert.ok(await page.isVisible("#retry"));

    await page.fill("#endDate", "2025-11-14");
    await page.click("#retry");
    await finished(page);
    assert.ok(await page.isHidden("#error-panel"));
    assert.equal(await page.locator(".day-card").count(), 3);
    await context.close();
  });

  test("the offline planner's destinations are the only choice, said before any request", async () => {
    const { page, context, requests } = await openPage({ query: "?lang=en" });
    assert.match(await page.textContent("#location-hint"), /offline planner knows the 12 places/);
    assert.equal(await page.locator("#destinations option").count(), 12);
    const before = requests.length;
    await plan(page, { location: "Atlantis" });
    await page.waitForSelector("#location-error:not([hidden])");
    assert.match(await page.textContent("#location-error"), /Pick one of the places.*Seoul/);
    assert.equal(requests.length, before, "no request was sent");
    await context.close();
  });

  test("with an LLM provider any city may be typed, and the server's answer is shown", async () => {
    // The server here is offline; the page is told otherwise (its catalog says places beyond the list are
    // planned), and the stream request is answered in the page, so nothing leaves this machine.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const page = await context.newPage();
    const sent = [];
    await page.route("**/api/v1/destinations", async (route) => {
      const response = await route.fetch();
      const catalog = await response.json();
      await route.fulfill({ response, json: { ...catalog, plansAnywhere: true } });
    });
    await page.route("**/api/v1/plans/generate/stream", async (route) => {
      sent.push(route.request().postDataJSON());
      await route.fulfill({
        status: 422,
        json: { error: { code: "unknown_destination", message: 'no place called "Lisbonne-sur-Mer" was found', field: "location" } },
      });
    });
    await page.goto(`${server.baseUrl}/?lang=en`);
    await page.waitForSelector("body[data-loaded]");
    assert.match(await page.textContent("#location-hint"), /Any city works/);
    await plan(page, { location: "Lisbonne-sur-Mer" });
    await page.waitForSelector("#error-panel:not([hidden])");
    assert.equal(sent.length, 1);
    assert.equal(sent[0].location, "Lisbonne-sur-Mer");
    assert.equal(sent[0].language, "en");
    assert.equal(await page.textContent("#error-title"), "We don't know this destination yet");
    assert.equal(await page.textContent("#error-message"), 'no place called "Lisbonne-sur-Mer" was found');
    assert.equal(await page.getAttribute("#location", "aria-invalid"), "true");
    await context.close();
  });

  test("a dropped connection: the page says it is reconnecting, resumes, and finishes the plan", async () => {
    const { page, context, problems } = await openPage({ query: "?lang=en" });
    // The first stream's connection ends in the middle of the second day's event, as a phone changing
    // networks would: the page gets the events before it, then the body stops, without `done`.
    let cutAt;
    await page.route("**/api/v1/plans/generate/stream", async (route) => {
      const response = await route.fetch();
      const body = await response.text();
      const firstDay = body.indexOf('"type":"day"');
      cutAt = body.indexOf('"type":"day"', firstDay + 1) + 10;
      assert.ok(firstDay > 0 && cutAt > firstDay + 10, "the stream has two day events to cut between");
      await route.fulfill({ response, body: body.slice(0, cutAt) });
    });
    const resumes = [];
    page.on("request", (request) => {
      if (request.url().includes("/api/v1/plans/streams/")) resumes.push({ url: request.url(), headers: request.headers() });
    });
    await watch(page);
    await plan(page, { startDate: "2025-12-01", endDate: "2025-12-03" });

    // Said plainly while the client waits (the server's retry: hint, 3 s) before resuming.
    await page.waitForSelector("#reconnecting:not([hidden])");
    assert.equal(await page.textContent("#reconnecting-title"), "Reconnecting… (attempt 1)");
    assert.match(await page.textContent("#reconnecting"), /still being made/);
    assert.ok(await page.isVisible("#cancel"), "it can still be cancelled");
    assert.equal(await page.getAttribute("#progress-panel", "data-state"), "running");
    assert.ok(Number(await page.getAttribute("#progress-bar", "aria-valuenow")) < 100);
    assert.equal(await page.locator(".day-card.draft").count(), 1, "the first day's card, from before the cut");
    await page.screenshot({ path: path.join(ARTIFACTS, "reconnecting.png") });
    // In Korean too.
    await page.click('button[data-lang="ko"]');
    assert.equal(await page.textContent("#reconnecting-title"), "다시 연결하는 중… (1번째)");
    await page.screenshot({ path: path.join(ARTIFACTS, "reconnecting-ko.png") });
    await page.click('button[data-lang="en"]');

    // Resumed after the last whole event, and the plan completes as usual; the notice is gone.
    await finished(page);
    assert.ok(await page.isHidden("#reconnecting"));
    assert.equal(await page.getAttribute("#progress-panel", "data-reconnecting"), null);
    assert.equal(await page.getAttribute("#progress-panel", "data-state"), "done");
    assert.equal(resumes.length, 1);
    assert.match(resumes[0].url, /\/api\/v1\/plans\/streams\/str_[^/]+\/events$/);
    assert.match(resumes[0].headers["last-event-id"], /^\d+$/);
    assert.equal(await page.locator(".day-card").count(), 3);
    assert.equal(await page.locator(".day-card.draft").count(), 0);
    assert.match(await page.textContent("#total-amount"), /^₩[\d,]+$/);
    // Every line of the draft once: nothing lost or repeated across the reconnect.
    const draft = await page.textContent("#draft");
    for (const n of [1, 2, 3]) assert.equal(draft.split(`Day ${n}`).length - 1, 1, `"Day ${n}" once in the draft`);
    const seen = await page.evaluate(() => window.__seen);
    assert.deepEqual(seen.progress, [...seen.progress].sort((a, b) => a - b), "the bar only moves forward");
    await page.screenshot({ path: path.join(ARTIFACTS, "reconnected.png"), fullPage: true });
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("cancel stops the stream mid-draft", async () => {
    const { page, context, problems } = await openPage({ query: "?lang=en" });
    // A trip not planned before (nothing cached), long enough to be cut: five days at 15 ms a line.
    // Cancelling aborts the stream's request: once it has failed, no event can arrive any more.
    const isStream = (request) => request.url().includes("/api/v1/plans/generate/stream");
    const streamAborted = page.waitForEvent("requestfailed", { predicate: isStream, timeout: 10_000 });
    // Press Cancel the moment the first draft text shows, from inside the page, watching from before the
    // plan is asked for: on a loaded machine a click sent from here may arrive after the whole stream has
    // finished, and then there is nothing to cancel.
    const pressed = page.evaluate(
      () =>
        new Promise((resolve) => {
          const draft = document.getElementById("draft");
          const press = () => {
            if (draft.textContent.length === 0) return false;
            document.getElementById("cancel").click();
            resolve();
            return true;
          };
          if (press()) return;
          const watch = new MutationObserver(() => press() && watch.disconnect());
          watch.observe(draft, { childList: true, characterData: true, subtree: true });
        }),
    );
    await plan(page, { location: "Paris", startDate: "2025-06-01", endDate: "2025-06-05", budget: "high" });
    await pressed;
    await page.waitForSelector('#progress-panel[data-state="cancelled"]');
    assert.match(await page.textContent("#progress-message"), /Cancelled/);
    assert.ok(await page.isHidden("#cancel"));
    assert.equal(await page.isDisabled("#submit"), false);
    const progress = Number(await page.getAttribute("#progress-bar", "aria-valuenow"));
    assert.ok(progress < 100, `stopped at ${progress}%`);
    await streamAborted;
    assert.equal(Number(await page.getAttribute("#progress-bar", "aria-valuenow")), progress, "nothing moves after cancel");
    assert.equal(await page.locator("#summary").count(), 0);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
