// The API reference at /docs in a real browser: Swagger UI, served by the binary, draws every operation of the
// server's own /openapi.json under the strict Content-Security-Policy, fetches nothing from another origin, logs no
// error, and its "Try it out" calls the API. Screenshots go to e2e/artifacts.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ARTIFACTS, launchBrowser, record } from "../support/browser.mjs";
import { startServer } from "../support/server.mjs";

let browser;
let server;

before(async () => {
  [browser, server] = await Promise.all([launchBrowser(), startServer()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Every operation of the document, as Swagger UI labels them: `GET /health`. */
async function documentedOperations() {
  const spec = await (await fetch(`${server.baseUrl}/openapi.json`)).json();
  return Object.entries(spec.paths).flatMap(([route, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${route}`));
}

/** /docs, loaded and drawn, with every request, error and CSP violation recorded. */
async function openDocs() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const { requests, problems } = record(page);
  // Added through the DevTools protocol, which the page's policy does not govern, before any script runs.
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  const response = await page.goto(`${server.baseUrl}/docs`);
  try {
    await page.waitForSelector("body[data-loaded]");
    await page.waitForSelector(".opblock");
  } catch (error) {
    throw new Error(`/docs did not draw: ${error.message}\nrequests: ${requests.join(", ")}\nproblems: ${problems.join("; ")}`);
  }
  return { page, context, response, requests, problems };
}

describe("the API reference at /docs", () => {
  test("lists every operation, offline, under the strict policy, without errors", async () => {
    const { page, context, response, requests, problems } = await openDocs();

    const csp = response.headers()["content-security-policy"];
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /style-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-(eval|inline)/);

    const expected = await documentedOperations();
    assert.ok(expected.length >= 10, `the document has ${expected.length} operations`);
    const shown = await page.$$eval(".opblock", (blocks) =>
      blocks.map((block) => {
        const method = block.querySelector(".opblock-summary-method")?.textContent.trim();
        const route = block.querySelector(".opblock-summary-path")?.getAttribute("data-path");
        return `${method} ${route}`;
      }),
    );
    assert.deepEqual([...shown].sort(), [...expected].sort(), "Swagger UI shows exactly the document's operations");
    for (const tag of ["plans", "streams", "meta", "admin"]) {
      assert.ok(await page.locator(`.opblock-tag[data-tag="${tag}"]`).count(), `the ${tag} section is shown`);
    }

    const elsewhere = requests.filter((url) => !url.startsWith(server.baseUrl) && !url.startsWith("data:"));
    assert.deepEqual(elsewhere, [], "nothing is fetched from another origin");
    assert.deepEqual(await page.evaluate(() => window.__violations), [], "no Content-Security-Policy violation");
    assert.deepEqual(problems, [], "no page or console error");
    await page.screenshot({ path: path.join(ARTIFACTS, "docs.png") });
    await context.close();
  });

  test("shows the stream's events and tries an operation against the server", async () => {
    const { page, context, problems } = await openDocs();

    const stream = page.locator("#operations-plans-generate_stream");
    await stream.locator(".opblock-summary").click();
    await stream.locator(".responses-wrapper").waitFor();
    assert.match(await stream.locator(".responses-wrapper").innerText(), /text\/event-stream/);

    const live = page.locator("#operations-meta-live");
    await live.locator(".opblock-summary").click();
    await live.locator(".try-out__btn").click();
    await live.locator(".execute").click();
    await live.locator(".live-responses-table tr.response .response-col_status").first().waitFor();
    assert.equal((await live.locator(".live-responses-table tr.response .response-col_status").first().innerText()).trim(), "200");
    assert.match(await live.locator(".live-responses-table tr.response .response-col_description").first().innerText(), /"live"/);

    assert.deepEqual(await page.evaluate(() => window.__violations), [], "no Content-Security-Policy violation");
    assert.deepEqual(problems, [], "no page or console error");
    await stream.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, "docs-operations.png"), fullPage: true });
    await context.close();
  });
});
