// deploy/nginx/tripstream.conf in Debian's nginx, in front of two real `tripstream serve` replicas that share
// Redis: the original's curl command and React snippet work through it, events are not held back, a client
// whose replica is killed resumes on the other and gets every event once, and a replica told to stop drains
// its streams while nginx sends new ones to the other.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import {
  clientRequire,
  generationsInFlight,
  postStream,
  readStream,
  readiness,
  repoRoot,
  startCluster,
  waitFor,
} from "./support.mjs";

// The original service's notes, where CI and developers keep them: beside the repository.
const ORIGINAL = path.resolve(repoRoot, "../shared/original/STREAMING_IMPLEMENTATION.md");
const ORIGINAL_BASE = "http://localhost:8000";
const SEOUL = { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium" };

/** A different trip each call, so no request joins another's generation or gets a cached replay. */
let nextTrip = 0;
function trip(days = 3, extra = {}) {
  const start = new Date(Date.UTC(2026, 0, 1 + nextTrip++ * 20));
  const end = new Date(start.getTime() + (days - 1) * 86_400_000);
  const date = (d) => d.toISOString().slice(0, 10);
  return { location: "Kyoto", startDate: date(start), endDate: date(end), budget: "medium", language: "en", ...extra };
}

/** Every message of a stream read to its end (or to `limit` messages). */
async function collect(response, limit = Infinity) {
  const events = [];
  const result = await readStream(response, (e) => events.push(e) >= limit);
  return { events, ...result };
}

/** `TAKEOVER_GAP` (crates/adapters/src/eventlog): a replica taking a stream over numbers on from past it, since
 * the replica that died may have sent its clients events it never logged, and no id may name two events. */
const TAKEOVER_GAP = 100_000;

function assertWhole(events, what) {
  // Contiguous from 0; from a takeover's "starting it again" status on, contiguous from past the gap. The
  // takeover numbers on from the shared log's last event, which may be behind the last one the client got:
  // a replica killed at once may have sent its clients events it had not yet logged (generations/mod.rs,
  // `take_over`). No id names two events either way.
  const restart = events.findIndex((e) => e.event.message?.includes("starting it again"));
  const ids = events.map((e) => e.id);
  const firstTaken = restart >= 0 ? Number(ids[restart]) - TAKEOVER_GAP : 0;
  assert.ok(
    restart < 0 || (firstTaken >= 0 && firstTaken <= restart),
    `${what}: the takeover numbers on from past the gap, at or before the events the client got: ${ids}`,
  );
  const expected = events.map((_, i) => String(restart >= 0 && i >= restart ? i - restart + firstTaken + TAKEOVER_GAP : i));
  assert.deepEqual(ids, expected, `${what}: every event once, in order`);
  assert.deepEqual(events.slice(-2).map((e) => e.event.type), ["complete", "done"], `${what}: ends with complete, done`);
  const progress = events.map((e) => e.event.progress).filter((p) => p !== undefined);
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b), `${what}: progress never goes back`);
}

describe("the original's clients, through nginx", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster("clients", { OFFLINE_CHUNK_DELAY_MS: "5" });
  });
  after(() => cluster?.stop());

  test("the original's curl command streams the plan to done", () => {
    const source = existsSync(ORIGINAL) ? readFileSync(ORIGINAL, "utf8") : readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const command = source.match(/curl -N -X POST http:\/\/localhost:8000\/api\/v1\/plans\/generate\/stream \\\n[\s\S]*?}'\n/)?.[0];
    assert.ok(command, "the curl command is in the document");
    const run = spawnSync("bash", ["-c", command.replace(ORIGINAL_BASE, cluster.nginx.base)], { encoding: "utf8", timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    const events = run.stdout.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
    assert.deepEqual(events.slice(0, 3).map((e) => e.progress), [10, 20, 30]);
    assert.equal(events[0].message, "Seoul의 날씨 정보를 수집하고 있습니다...");
    assert.deepEqual(events.slice(-2).map((e) => e.type), ["complete", "done"]);
    assert.equal(events.at(-2).plan.days.length, 3);
    // It went through nginx, to a replica.
    const line = cluster.nginx.accessLog().find((l) => l.uri === "/api/v1/plans/generate/stream");
    assert.ok(line && line.status === 200 && cluster.replicas.some((r) => line.upstreams.at(-1) === `127.0.0.1:${r.port}`), line?.line);
  });

  test("the original's React snippet gets its plan and fills its state", async () => {
    const ts = clientRequire("typescript");
    const fixture = readFileSync(path.join(repoRoot, "clients/typescript/test/fixtures/original-snippet.ts"), "utf8");
    const { outputText } = ts.transpileModule(fixture, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: "original-snippet.ts",
    });
    const dir = mkdtempSync(path.join(tmpdir(), "tripstream-snippet-"));
    const realFetch = globalThis.fetch;
    try {
      writeFileSync(path.join(dir, "snippet.mjs"), outputText);
      const snippet = await import(pathToFileURL(path.join(dir, "snippet.mjs")).href);
      // The snippet's URL is fixed at http://localhost:8000, where the original ran: send it to nginx.
      globalThis.fetch = (url, init) => realFetch(String(url).replace(ORIGINAL_BASE, cluster.nginx.base), init);
      const events = [];
      const plan = await snippet.generatePlanStreaming(SEOUL, (event) => events.push(event));
      assert.equal(plan.days.length, 3);
      assert.deepEqual(events.slice(0, 3).map((e) => e.progress), [10, 20, 30]);

      snippet.slots.length = 0;
      await snippet.PlanGenerator().handleGenerate();
      const [status, progress, chunks, planSlot] = snippet.slots;
      assert.equal(status.history[0], "Seoul의 날씨 정보를 수집하고 있습니다...");
      assert.equal(progress.history.at(-1), 95);
      assert.match(chunks.value.join(""), /^1일차 — /);
      assert.equal(planSlot.value.days.length, 3);
    } finally {
      globalThis.fetch = realFetch;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bodies over the server's 16 KiB are refused by nginx in the API's error shape; 16 KiB passes", async () => {
    const body = JSON.stringify(trip(1));
    const atLimit = body + " ".repeat(16 * 1024 - body.length);
    const ok = await postStream(cluster.nginx.base, atLimit);
    assert.equal(ok.status, 200);
    await ok.body.cancel();

    const over = atLimit + " ";
    const viaNginx = await postStream(cluster.nginx.base, over);
    const direct = await postStream(cluster.replicas[0].base, over);
    assert.equal(viaNginx.status, 413);
    assert.equal(viaNginx.headers.get("content-type"), "application/json");
    assert.deepEqual(await viaNginx.json(), await direct.json(), "the same answer as the replica's own");
    const line = cluster.nginx.accessLog().find((l) => l.status === 413);
    assert.equal(line.upstreams[0], "-", "refused before any replica saw it");
  });
});

describe("nothing is buffered", () => {
  const DELAY_MS = 100;
  let cluster;
  before(async () => {
    // A stream a test stops reading is cancelled at once, so the samples do not pile up generations.
    cluster = await startCluster("buffering", { OFFLINE_CHUNK_DELAY_MS: String(DELAY_MS), STREAM_CANCEL_GRACE_SECS: "0" });
  });
  after(() => cluster?.stop());

  /** The arrival of a stream's first `events` events, in ms from sending the request. */
  async function timeline(base, events) {
    const t0 = performance.now();
    // What browsers send: a proxy that compressed the stream would have to hold events back to do it.
    const response = await postStream(base, trip(2), { "accept-encoding": "gzip, deflate, br" });
    assert.equal(response.headers.get("content-encoding"), null, "the stream is not compressed");
    assert.equal(response.headers.get("x-accel-buffering"), "no", "a proxy in front is told not to buffer either");
    const times = [];
    await readStream(response, ({ at }) => times.push(at) >= events, t0);
    return times;
  }

  test("the first event arrives within a few ms of a direct connection's", async (t) => {
    const direct = cluster.replicas[0].base;
    // Warm both paths (connections, each replica's first request), then interleave direct and nginx.
    for (const base of [direct, cluster.replicas[1].base, cluster.nginx.base, cluster.nginx.base]) await timeline(base, 1);
    const pairs = [];
    for (let i = 0; i < 25; i++) {
      const [viaDirect] = await timeline(direct, 1);
      const [viaNginx] = await timeline(cluster.nginx.base, 1);
      pairs.push({ direct: viaDirect, nginx: viaNginx });
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const extra = median(pairs.map((p) => p.nginx - p.direct));
    t.diagnostic(
      `first event: direct ${median(pairs.map((p) => p.direct)).toFixed(1)} ms, through nginx ` +
        `${median(pairs.map((p) => p.nginx)).toFixed(1)} ms (medians of 25; nginx adds ${extra.toFixed(1)} ms)`,
    );
    assert.ok(extra < 5, `nginx adds ${extra.toFixed(1)} ms to the first event`);
  });

  test("each chunk arrives as it is written, not gathered up", async () => {
    // The first four events leave together; then the offline planner writes a chunk every DELAY_MS.
    const times = await timeline(cluster.nginx.base, 10);
    const gaps = times.slice(4).map((t, i) => t - times[3 + i]);
    // Buffering gathers them all (gaps near 0); a busy machine may delay one chunk into the next (196, 20).
    const spaced = gaps.filter((g) => g > DELAY_MS * 0.5).length;
    assert.ok(spaced >= gaps.length - 1, `chunks arrive one by one, ${DELAY_MS} ms apart: gaps ${gaps.map((g) => g.toFixed(0))}`);
  });
});

describe("a replica killed mid-stream", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster("kill", { OFFLINE_CHUNK_DELAY_MS: "40" });
  });
  after(() => cluster?.stop());

  test("its client resumes through nginx on the other replica and gets every event exactly once", async () => {
    const { nginx, replicas } = cluster;
    const response = await postStream(nginx.base, trip(4));
    assert.equal(response.status, 200);
    const streamId = response.headers.get("x-stream-id");
    const token = response.headers.get("x-resume-token");
    const events = [];
    let holder;
    // Read a few events, then kill the replica that runs the generation, with the stream open.
    const first = await readStream(response, (e) => {
      events.push(e);
      if (events.length === 6) {
        generationsInFlight(replicas[0]).then((n) => {
          holder = n > 0 ? replicas[0] : replicas[1];
          holder.signal("SIGKILL");
        });
      }
    });
    assert.ok(holder, "the stream was still open when its replica was killed");
    assert.notEqual(first.ended, "done", "the stream broke with its replica");
    const survivor = replicas.find((r) => r !== holder);

    // Resume as a client does: the same nginx address, after the last event received.
    let resumes = 0;
    while (events.at(-1)?.event.type !== "done") {
      assert.ok(++resumes <= 5, `resumed ${resumes} times without reaching done`);
      const resumed = await fetch(`${nginx.base}/api/v1/plans/streams/${streamId}/events`, {
        headers: { "last-event-id": events.at(-1).id, "x-resume-token": token },
      });
      assert.equal(resumed.status, 200);
      await readStream(resumed, (e) => void events.push(e));
    }
    assertWhole(events, "the resumed stream");
    assert.ok(events.some((e) => e.event.message?.includes("starting it again")), "the other replica said it took the generation over");
    assert.equal(events.at(-2).event.plan.days.length, 4);

    // nginx sent the resume to the survivor (after trying the dead replica, if it did).
    const resumeLines = nginx.accessLog().filter((l) => l.uri.startsWith(`/api/v1/plans/streams/${streamId}/events`));
    assert.ok(resumeLines.length >= 1);
    for (const line of resumeLines) {
      assert.equal(line.status, 200, line.line);
      assert.equal(line.upstreams.at(-1), `127.0.0.1:${survivor.port}`, line.line);
    }
  });
});

describe("no replica left", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster("none");
  });
  after(() => cluster?.stop());

  test("nginx answers 503 in the API's error shape, with Retry-After", async () => {
    for (const replica of cluster.replicas) {
      replica.signal("SIGKILL");
      await replica.exited;
    }
    const response = await postStream(cluster.nginx.base, trip(1));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(response.headers.get("retry-after"), "3");
    const body = await response.json();
    assert.equal(body.error.code, "unavailable", "the server's own code for a 503");
    assert.match(body.error.message, /try again/);
  });
});

describe("a replica sent SIGTERM", () => {
  let cluster;
  before(async () => {
    cluster = await startCluster("drain", { OFFLINE_CHUNK_DELAY_MS: "40", SHUTDOWN_GRACE_SECS: "20" });
  });
  after(() => cluster?.stop());

  test("drains its streams while nginx sends new streams to the other", async (t) => {
    const { nginx, replicas } = cluster;
    // A stream long enough to outlast the new ones below (an 8-day trip: about 4 s of chunks).
    const response = await postStream(nginx.base, trip(8));
    const streamId = response.headers.get("x-stream-id");
    const draining = [];
    let stopping;
    const reading = readStream(response, (e) => {
      draining.push(e);
      if (draining.length === 6) stopping = generationsInFlight(replicas[0]).then((n) => (n > 0 ? replicas[0] : replicas[1]));
    });
    const stopped = await waitFor("the stream's replica to be known", () => stopping);
    const other = replicas.find((r) => r !== stopped);
    stopped.signal("SIGTERM");
    await waitFor("the replica to start shutting down", () => stopped.output().includes("shutting down"));
    assert.notEqual(await readiness(stopped.base), true, "a draining replica is not ready");

    // New streams, while the old one is still going: all served, all by the other replica. Six at once, so
    // least_conn's ties send some to the draining replica first, and nginx must move them.
    const fresh = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const r = await postStream(nginx.base, trip(1), { "x-request-id": `${streamId}-during-drain-${i}` });
        assert.equal(r.status, 200);
        return collect(r);
      }),
    );
    assert.ok(stopped.running(), "the stopped replica is still draining while the new streams ran");
    for (const { events } of fresh) assertWhole(events, "a stream started during the drain");
    // nginx writes a request's log line once it has ended, which may be just after the client read it.
    const during = () => nginx.accessLog().filter((l) => l.id.startsWith(`${streamId}-during-drain-`));
    const lines = await waitFor("nginx to log the six streams", () => during().length >= 6 && during(), 5_000);
    assert.equal(lines.length, 6);
    for (const line of lines) assert.equal(line.upstreams.at(-1), `127.0.0.1:${other.port}`, line.line);
    const moved = lines.filter((l) => l.upstreams[0] === `127.0.0.1:${stopped.port}`).length;
    t.diagnostic(`new streams nginx first tried on the draining replica, then moved: ${moved} of 6`);

    // The draining stream finished where it was, as if nothing happened.
    const { ended } = await reading;
    assert.equal(ended, "done");
    assertWhole(draining, "the draining stream");
    assert.ok(!draining.some((e) => e.event.type === "error"), "no error on the draining stream");
    assert.ok(!draining.some((e) => e.event.message?.includes("starting it again")), "not handed over");
    const exit = await stopped.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, "a clean exit once its stream was done");
  });
});
