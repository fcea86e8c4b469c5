// Each day's map in a real browser. Without tiles (the tests have no internet; here the tile host is a port
// nobody listens on) the page draws a sketch: one numbered marker per activity, in visiting order, where its
// coordinates put it, and the legs between them. With a tile server (support/tiles.mjs) the tiled map shows
// the same stops, and the page's Content-Security-Policy admits that host and no other.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, assertAccessible, fetchPlan, finished, launchBrowser, openPage, plan } from "../support/browser.mjs";
import { freePort, startServer } from "../support/server.mjs";
import { startTileServer } from "../support/tiles.mjs";

const SEOUL = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium", language: "en" };

let browser;
let offline;
let deadTiles;
let tiled;
let tiles;

before(async () => {
  deadTiles = `http://127.0.0.1:${await freePort()}`;
  tiles = await startTileServer();
  [browser, offline, tiled] = await Promise.all([
    launchBrowser(),
    startServer({ MAP_TILE_URL: `${deadTiles}/{z}/{x}/{y}.png` }),
    startServer({ MAP_TILE_URL: tiles.template }),
  ]);
});

after(async () => {
  await browser?.close();
  await Promise.all([offline?.stop(), tiled?.stop(), tiles?.stop()]);
});

/** What a day's sketch shows: its markers (number, position) and legs (from, to, dashed or not), in DOM order. */
function readSketch(page, day) {
  return page.$eval(`.day-card[data-day="${day}"] svg.sketch`, (svg) => ({
    stops: [...svg.querySelectorAll("g.stop")].map((g) => {
      const [x, y] = g.getAttribute("transform").match(/-?[\d.]+/g).map(Number);
      return { n: Number(g.dataset.stop), label: g.querySelector("text").textContent, x, y };
    }),
    legs: [...svg.querySelectorAll("path.leg")].map((leg) => ({
      from: Number(leg.dataset.from),
      to: Number(leg.dataset.to),
      gap: leg.classList.contains("gap"),
    })),
    title: svg.querySelector("title").textContent,
  }));
}

/** Every pair of stops sits as their coordinates do: east is right, north is up. */
function assertOnTheirCoordinates(stops, activities) {
  for (const a of stops) {
    for (const b of stops) {
      const [pa, pb] = [activities[a.n - 1].location, activities[b.n - 1].location];
      if (pa.lon < pb.lon - 1e-4) assert.ok(a.x < b.x, `${a.n} is west of ${b.n}`);
      if (pa.lat < pb.lat - 1e-4) assert.ok(a.y > b.y, `${a.n} is south of ${b.n}`);
    }
  }
}

describe("the day maps", () => {
  test("with tiles unreachable, each day is sketched: a marker per activity in order, and the legs between them", async () => {
    const { page, context, problems } = await openPage(browser, offline, { query: "?lang=en", tileOrigin: deadTiles });
    await plan(page);
    await finished(page);
    const expected = await fetchPlan(offline, SEOUL);
    assert.equal(await page.locator("figure.day-map").count(), expected.days.length);

    for (const day of expected.days) {
      const n = day.activities.length;
      const sketch = await readSketch(page, day.day);
      assert.deepEqual(
        sketch.stops.map((s) => [s.n, s.label]),
        day.activities.map((_, i) => [i + 1, String(i + 1)]),
        `day ${day.day}: one numbered marker per activity, in visiting order`,
      );
      assert.deepEqual(
        sketch.legs,
        day.activities.slice(1).map((_, i) => ({ from: i + 1, to: i + 2, gap: false })),
        `day ${day.day}: a leg from each stop to the next`,
      );
      assertOnTheirCoordinates(sketch.stops, day.activities);
      // Read out in order for screen readers, and numbered the same in the list.
      assert.equal(sketch.title, `Sketch of day ${day.day}'s route: ${day.activities.map((a, i) => `${i + 1} ${a.name}`).join(" → ")}`);
      const card = page.locator(`.day-card[data-day="${day.day}"]`);
      assert.deepEqual(await card.locator(".activity .dot").allTextContents(), day.activities.map((_, i) => String(i + 1)));
      assert.match(await card.locator(".route-summary").textContent(), new RegExp(`^${n} stops · [\\d.]+ km in straight lines$`));
    }

    // The first day's tiles were tried and failed: the sketch is what shows, and no tiled map is left behind.
    const first = page.locator('figure.day-map[data-day="1"]');
    await page.waitForSelector('figure.day-map[data-day="1"][data-tiles="failed"]');
    assert.ok(await first.locator("svg.sketch").isVisible());
    assert.equal(await first.locator(".tiles").count(), 0);
    await page.locator('.day-card[data-day="1"]').screenshot({ path: path.join(ARTIFACTS, "map-sketch.png") });
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("an activity without coordinates is listed, numbered, and not drawn; the leg past it is dashed", async () => {
    const { page, context, problems } = await openPage(browser, offline, { query: "?lang=en", tileOrigin: deadTiles });
    // The stream as the server sends it, less the third activity's location on day 1 (an LLM may omit it).
    await page.route("**/api/v1/plans/generate/stream", async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/^data: (.*)$/gm, (line, json) => {
        const event = JSON.parse(json);
        const day = event.type === "day" ? event.day : event.type === "complete" ? event.plan.days[0] : null;
        if (day?.day === 1) delete day.activities[2].location;
        return `data: ${JSON.stringify(event)}`;
      });
      await route.fulfill({ response, body });
    });
    await plan(page, { startDate: "2025-11-17", endDate: "2025-11-18" });
    await finished(page);
    const expected = await fetchPlan(offline, { ...SEOUL, startDate: "2025-11-17", endDate: "2025-11-18" });
    const activities = expected.days[0].activities;
    const drawn = activities.map((_, i) => i + 1).filter((n) => n !== 3);

    const sketch = await readSketch(page, 1);
    assert.deepEqual(sketch.stops.map((s) => s.n), drawn);
    assert.deepEqual(
      sketch.legs.map((leg) => [leg.from, leg.to, leg.gap]),
      drawn.slice(1).map((to, i) => [drawn[i], to, drawn[i] === 2]),
    );
    const card = page.locator('.day-card[data-day="1"]');
    assert.equal(await card.locator(".activity").count(), activities.length, "still in the list");
    assert.equal(await card.locator('.activity[data-stop="3"] .dot.unplaced').textContent(), "3");
    assert.equal(await card.locator(".map-unplaced").textContent(), `Not on the map (no location): 3 ${activities[2].name}`);
    assert.match(await card.locator(".route-summary").textContent(), new RegExp(`^${drawn.length} stops`));
    // The other day is whole.
    assert.equal((await readSketch(page, 2)).stops.length, expected.days[1].activities.length);
    await card.screenshot({ path: path.join(ARTIFACTS, "map-sketch-unplaced.png") });
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("with a tile server, the tiled map shows the same stops and legs, and the policy admits that host only", async () => {
    const { page, context, problems } = await openPage(browser, tiled, { query: "?lang=en" });
    const csp = (await page.request.get(`${tiled.baseUrl}/`)).headers()["content-security-policy"];
    assert.match(csp, new RegExp(`img-src 'self' data: ${tiles.origin};`));
    await plan(page);
    await finished(page);
    const expected = await fetchPlan(tiled, SEOUL);
    const n = expected.days[0].activities.length;

    await page.waitForSelector('figure.day-map[data-day="1"][data-tiles="shown"]');
    const map = page.locator('figure.day-map[data-day="1"] .tiles');
    assert.ok(await map.isVisible());
    assert.ok(await map.locator("img.leaflet-tile-loaded").count() > 0);
    assert.deepEqual(await map.locator(".leaflet-marker-icon.map-stop").allTextContents(), expected.days[0].activities.map((_, i) => String(i + 1)));
    assert.equal(await map.locator("path.map-leg").count(), n - 1);
    assert.match(await map.locator(".leaflet-control-attribution").textContent(), /© OpenStreetMap contributors/);
    assert.equal(await map.locator('.leaflet-control-attribution a[href="https://www.openstreetmap.org/copyright"]').count(), 1);
    // The tile server learns the site, not the page.
    assert.ok(tiles.requests.length > 0);
    assert.ok(tiles.requests.every((r) => r.referer === `${tiled.baseUrl}/`), JSON.stringify(tiles.requests[0]));
    await page.locator('.day-card[data-day="1"]').screenshot({ path: path.join(ARTIFACTS, "map-tiles.png") });

    // Tiles are fetched as a day comes into view, not all at once.
    const last = `figure.day-map[data-day="${expected.days.length}"]`;
    assert.equal(await page.getAttribute(last, "data-tiles"), "pending");
    await page.locator(last).scrollIntoViewIfNeeded();
    await page.waitForSelector(`${last}[data-tiles="shown"]`);

    // An image from any other host is refused by the page's policy.
    const blocked = await page.evaluate(
      (url) =>
        new Promise((resolve) => {
          document.addEventListener("securitypolicyviolation", (event) => resolve(`${event.violatedDirective} ${event.blockedURI}`), { once: true });
          const img = new Image();
          img.src = url;
          document.body.append(img);
        }),
      `http://127.0.0.1:${await freePort()}/elsewhere.png`,
    );
    assert.match(blocked, /^img-src http:\/\/127\.0\.0\.1:\d+\/elsewhere\.png$/);
    await page.evaluate(() => document.querySelector('img[src$="elsewhere.png"]')?.remove());

    await assertAccessible(page, "a finished plan with tiled maps");
    assert.deepEqual(problems.filter((p) => !p.includes("elsewhere.png")), []);
    await context.close();
  });
});
