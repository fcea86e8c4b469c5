// What the browser tests share: Debian's Chromium driven by playwright-core, a page opened on a running
// `tripstream serve` with its requests and complaints recorded, the form filled in, and axe-core's audit.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { freePort, startServer } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
/** Screenshots and PDFs of what the tests saw (git-ignored). */
export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../e2e/artifacts");

export async function launchBrowser() {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/**
 * Chromium and a `tripstream serve` (with `env`) whose map tiles are unreachable: `tileOrigin` is a port of
 * 127.0.0.1 nobody listens on, as for a page with no internet. `close()` stops both.
 */
export async function browserAndServer(env = {}) {
  const tileOrigin = `http://127.0.0.1:${await freePort()}`;
  const [browser, server] = await Promise.all([launchBrowser(), startServer({ MAP_TILE_URL: `${tileOrigin}/{z}/{x}/{y}.png`, ...env })]);
  const close = async () => {
    await browser.close();
    await server.stop();
  };
  return { browser, server, tileOrigin, close };
}

/**
 * A fresh page on `server`, loaded, with every request and every page or console error recorded. Failed loads
 * from `tileOrigin` are expected where tiles are unreachable, and are not counted as problems.
 */
export async function openPage(
  browser,
  server,
  { width = 1280, height = 900, locale = "ko-KR", path: pagePath = "/", query = "", tileOrigin = null } = {},
) {
  const context = await browser.newContext({ viewport: { width, height }, locale, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const { requests, problems } = record(page, { ignoreFrom: tileOrigin });
  await page.goto(`${server.baseUrl}${pagePath}${query}`);
  try {
    await page.waitForSelector("body[data-loaded]");
  } catch (error) {
    // Say why the page never finished loading: what it asked for, what it complained of, what the server said.
    throw new Error(
      `the page did not load: ${error.message}\nrequests: ${requests.join(", ")}\nproblems: ${problems.join("; ")}\nserver output:\n${server.output()}`,
    );
  }
  return { page, context, requests, problems };
}

/** Records every request `page` makes and every page or console error (but console errors from `ignoreFrom`). */
export function record(page, { ignoreFrom = null } = {}) {
  const requests = [];
  const problems = [];
  page.on("request", (request) => requests.push(request.url()));
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    const ignored = ignoreFrom && message.location().url.startsWith(ignoreFrom);
    if (message.type() === "error" && !ignored) problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  return { requests, problems };
}

/** Runs one of poppler's tools (Debian's poppler-utils) and returns what it printed. */
export function poppler(tool, args) {
  try {
    return execFileSync(tool, args, { encoding: "utf8" });
  } catch (error) {
    if (error.code === "ENOENT") assert.fail(`${tool} is missing (apt-get install poppler-utils)`);
    throw error;
  }
}

/** A PDF page's text with its runs of white space made one space, so a name wrapped over two lines still reads whole. */
export function pdfPageText(pdf, n) {
  return poppler("pdftotext", ["-f", String(n), "-l", String(n), "-layout", pdf, "-"]).replace(/\s+/g, " ");
}

/** How many pages a PDF has, and their size in points. */
export function pdfPages(pdf) {
  const info = poppler("pdfinfo", [pdf]);
  const pages = Number(info.match(/^Pages:\s+(\d+)/m)?.[1]);
  const size = info.match(/^Page size:\s+([\d.]+) x ([\d.]+) pts/m).slice(1).map((n) => Math.round(Number(n)));
  return { pages, size, info };
}

/** Fills the form (the destination as typed, ISO dates) and submits it. */
export async function plan(page, { location = "Seoul", startDate = "2025-11-10", endDate = "2025-11-12", budget = "medium" } = {}) {
  await page.fill("#location", location);
  await page.fill("#startDate", startDate);
  await page.fill("#endDate", endDate);
  await page.check(`input[name="budget"][value="${budget}"]`);
  await page.click("#submit");
}

/** Waits for the plan to be complete and the form usable again. */
export async function finished(page) {
  await page.waitForSelector('#progress-bar[aria-valuenow="100"]');
  await page.waitForSelector("#summary");
  await page.waitForFunction(() => document.getElementById("submit").disabled === false);
}

/** The plan the server makes for `request` (the same one the page shows: the offline planner is deterministic). */
export async function fetchPlan(server, request) {
  const response = await fetch(`${server.baseUrl}/api/v1/plans/generate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/**
 * Runs axe-core on the page as it is (after its finite animations end, so colours are final) and fails on any
 * WCAG 2.1 A or AA violation, listing each with the elements and axe's reason.
 */
export async function assertAccessible(page, label) {
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((animation) => animation.effect?.getComputedTiming().iterations !== Infinity)
        .map((animation) => animation.finished.catch(() => undefined)),
    ),
  );
  // Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags } }), WCAG_21_AA);
  const report = result.violations.map(
    (violation) =>
      `${violation.id} (${violation.impact}): ${violation.help}\n` +
      violation.nodes.map((node) => `    ${node.target.join(" ")}: ${node.failureSummary?.replace(/\s+/g, " ")}`).join("\n"),
  );
  assert.equal(report.length, 0, `axe found WCAG 2.1 A/AA violations on ${label}:\n${report.join("\n")}`);
  assert.ok(result.passes.length > 10, `axe checked ${label} (${result.passes.length} rules passed)`);
}

/** The widths the page is checked at: a desktop browser and a phone. */
export const SCREENS = [
  { name: "desktop", width: 1280, height: 900 },
  { name: "phone", width: 375, height: 812 },
];
