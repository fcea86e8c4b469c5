// The original service's React snippet, `generatePlanStreaming` and its component's event handling, runs
// unchanged against a real `tripstream serve` and gets the final plan.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import ts from "typescript";

import { repoRoot, startServer } from "../support/server.mjs";

const fixturePath = fileURLToPath(new URL("./fixtures/original-snippet.ts", import.meta.url));
const fixture = readFileSync(fixturePath, "utf8");
// In CI `shared/` sits beside the repository; a developer's checkout may have it there too.
const documentPath = path.resolve(repoRoot, "../shared/original/STREAMING_IMPLEMENTATION.md");

/** The snippet's URL is fixed at http://localhost:8000; the stand-in `fetch` sends it to the test's server. */
const ORIGINAL_BASE = "http://localhost:8000";

let server;
let workDir;
let snippet;
let realFetch;

before(async () => {
  server = await startServer();
  // Type annotations off, nothing else touched: TypeScript's own transpiler, as a React app's build would.
  const { outputText } = ts.transpileModule(fixture, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: "original-snippet.ts",
  });
  workDir = mkdtempSync(path.join(tmpdir(), "tripstream-snippet-"));
  const modulePath = path.join(workDir, "original-snippet.mjs");
  writeFileSync(modulePath, outputText);
  snippet = await import(pathToFileURL(modulePath).href);

  realFetch = globalThis.fetch;
  globalThis.fetch = (url, init) => realFetch(String(url).replace(ORIGINAL_BASE, server.baseUrl), init);
});

after(async () => {
  if (realFetch) globalThis.fetch = realFetch;
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  await server?.stop();
});

test("the fixture is the document's code, unchanged", { skip: !existsSync(documentPath) && "STREAMING_IMPLEMENTATION.md is not beside the repository" }, () => {
  const document = readFileSync(documentPath, "utf8");
  const verbatim = fixture.split("// --- BEGIN VERBATIM ---\n")[1].split("// --- END VERBATIM ---")[0];
  assert.ok(verbatim.includes("async function generatePlanStreaming("));
  assert.ok(verbatim.length > 1500, "the whole function and the component's handler");
  assert.ok(document.includes(verbatim), "the VERBATIM part of the fixture is a contiguous copy of the document's snippet");
});

test("generatePlanStreaming gets the final plan and sees every compat event", async () => {
  const events = [];
  const plan = await snippet.generatePlanStreaming(
    { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium" },
    (event) => events.push(event),
  );
  assert.equal(plan.days.length, 3);
  assert.equal(plan.location, "Seoul");
  assert.equal(events.at(-1).type, "complete");
  assert.equal(events.at(-1).progress, 100);
  assert.deepEqual(events.slice(0, 3).map((e) => e.progress), [10, 20, 30]);
  assert.ok(events.filter((e) => e.type === "chunk").length > 5);
});

test("the component's handler fills its state: status, progress, chunks and the plan", async () => {
  snippet.slots.length = 0;
  const { handleGenerate } = snippet.PlanGenerator();
  await handleGenerate();
  const [status, progress, chunks, plan] = snippet.slots;
  assert.deepEqual(status.history.slice(0, 3), [
    "Seoul의 날씨 정보를 수집하고 있습니다...",
    "날씨 정보 수집 완료",
    "AI가 여행 계획을 생성하고 있습니다...",
  ]);
  assert.equal(status.value, "최종 계획을 완성하고 있습니다...");
  assert.deepEqual(progress.history, [10, 20, 30, 60, 65, 70, 95]);
  assert.match(chunks.value.join(""), /^1일차 — .*\n\d{2}:\d{2} /s);
  assert.equal(plan.value.days.length, 3);
  assert.equal(plan.value.totalCost, plan.value.days.reduce((sum, d) => sum + d.dailyCost, 0));
});
