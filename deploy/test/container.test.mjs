// The image, as far as these machines can build it: no registry is reachable and no Rust image runs here,
// so the Dockerfile's runtime stage is built with podman on a Debian bookworm base made by debootstrap
// (deploy/test/run makes it), with the host-built binary as the `prebuilt` stage; then it is run as the
// deployment runs it (read-only root, non-root user) to serve a plan and stop on SIGTERM in time. The
// build stage's context is checked to hold everything the build needs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { freePort, postStream, readStream, readiness, repoRoot, tripstreamBinary, waitFor } from "./support.mjs";

const BASE_IMAGE = process.env.TRIPSTREAM_TEST_BASE_IMAGE ?? "localhost/tripstream-test-base:bookworm";
const IMAGE = `localhost/tripstream-test:${process.pid}`;
// The runtime the issue prescribes for these machines (crun fails on their cgroups and rlimits).
const RUN = ["--runtime", "runc"];
const LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

function podman(args, { allowFailure = false, timeout = 300_000 } = {}) {
  const result = spawnSync("podman", args, { encoding: "utf8", timeout, maxBuffer: 64 * 1024 * 1024 });
  if (!allowFailure && result.status !== 0) {
    throw new Error(`podman ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** The machine's PostgreSQL (trust authentication, database `test`), as the Rust tests use it. */
const POSTGRES_PORT = 5432;
function psql(sql) {
  const url = process.env.TEST_DATABASE_URL ?? `postgres://postgres@127.0.0.1:${POSTGRES_PORT}/test`;
  const result = spawnSync("psql", ["-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`psql: ${result.stderr}`);
  return result.stdout;
}

/** A TCP proxy on `from` (127.0.0.1) to `to`: a service "coming up" on an address. */
function tcpProxy(from, to) {
  return new Promise((resolve, reject) => {
    const sockets = new Set();
    const server = net.createServer((client) => {
      const upstream = net.connect(to, "127.0.0.1");
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    server.on("error", reject);
    server.listen(from, "127.0.0.1", () =>
      resolve({ close: () => (server.close(), sockets.forEach((s) => s.destroy())) }),
    );
  });
}

/** Every image in podman's store, intermediate layers included. */
const allImages = () => new Set(podman(["images", "--all", "--quiet", "--no-trunc"]).stdout.split("\n").filter(Boolean));

/** Removes what a build made (its stages' images and layers), leaving the images that were there before. */
function removeImagesSince(before) {
  const made = [...allImages()].filter((id) => !before.has(id));
  if (made.length > 0) podman(["rmi", "--force", ...made], { allowFailure: true });
}

const available = spawnSync("podman", ["image", "exists", BASE_IMAGE]).status === 0;
const skip = !available && `the base image ${BASE_IMAGE} is missing: deploy/test/run makes it with debootstrap`;

describe("the image's runtime stage", { skip }, () => {
  let context;
  let imagesBefore;
  const containers = [];
  before(() => {
    imagesBefore = allImages();
    // The build context of a prebuilt image: only the binary.
    context = mkdtempSync(path.join(tmpdir(), "tripstream-image-"));
    copyFileSync(tripstreamBinary(), path.join(context, "tripstream"));
    podman([
      "build", ...RUN, ...LIMITS, "--network", "host", "--format", "docker",
      "--file", path.join(repoRoot, "Dockerfile"), "--target", "runtime",
      "--build-arg", `RUNTIME_BASE=${BASE_IMAGE}`, "--build-arg", "BINARY_FROM=prebuilt",
      "--tag", IMAGE, context,
    ]);
  });
  after(() => {
    for (const name of containers) podman(["rm", "--force", "--volumes", "--time", "0", name], { allowFailure: true });
    podman(["rmi", "--force", IMAGE], { allowFailure: true });
    if (imagesBefore) removeImagesSince(imagesBefore);
    if (context) rmSync(context, { recursive: true, force: true });
  });

  /**
   * Starts the image's default command, configured only by `env`, on the host's network; resolves once it
   * answers `probe` (`/health/ready`, or `/health/live` for a replica that cannot be ready yet).
   */
  async function run(env, probe = "/health/ready") {
    const port = await freePort();
    const name = `tripstream-test-${process.pid}-${containers.length}`;
    containers.push(name);
    const vars = { HOST: "127.0.0.1", PORT: String(port), ...env };
    podman([
      ...RUN, "run", "--detach", "--name", name, ...LIMITS, "--network", "host",
      // As the Kubernetes Deployment runs it: nothing writable but /tmp and a volume on its working directory
      // (where the SQLite run log goes when DATABASE_URL is not set).
      "--read-only", "--volume", "/var/lib/tripstream",
      ...Object.entries(vars).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      IMAGE,
    ]);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(`the container's server to answer ${probe}`, async () => {
      const state = podman(["inspect", "--format", "{{.State.Status}}", name]).stdout.trim();
      if (state === "exited") throw new Error(`the container exited:\n${podman(["logs", name]).stderr}`);
      if (probe === "/health/ready") return (await readiness(base)) === true;
      return fetch(`${base}${probe}`).then((r) => r.ok, () => false);
    }, 30_000);
    return { name, base };
  }

  test("is a non-root user running `tripstream serve`, with a health check", () => {
    const [image] = JSON.parse(podman(["image", "inspect", IMAGE]).stdout);
    const config = image.Config;
    assert.equal(config.User, "10001:10001");
    assert.deepEqual(config.Entrypoint, ["tripstream"]);
    assert.deepEqual(config.Cmd, ["serve"]);
    assert.equal(config.WorkingDir, "/var/lib/tripstream");
    assert.ok("8000/tcp" in config.ExposedPorts);
    // podman shows a Docker-format image's HEALTHCHECK beside its config.
    const check = image.Healthcheck ?? config.Healthcheck;
    assert.deepEqual(check?.Test, ["CMD", "tripstream", "healthcheck"]);
  });

  test("serves the original's request from its environment alone, and reports healthy", async () => {
    const { name, base } = await run({ OFFLINE_CHUNK_DELAY_MS: "0" });
    assert.equal(podman(["exec", name, "id", "-u"]).stdout.trim(), "10001");
    const response = await postStream(base, { location: "Seoul", startDate: "2025-11-10", endDate: "2025-11-12", budget: "medium" });
    assert.equal(response.status, 200);
    const events = [];
    const { ended } = await readStream(response, ({ event }) => void events.push(event));
    assert.equal(ended, "done");
    const plan = events.at(-2).plan;
    assert.equal(plan.days.length, 3);
    assert.equal(plan.metadata.provider, "offline", "the bundled data is in the binary");
    // The image's own HEALTHCHECK command, run in the container.
    const health = podman(["healthcheck", "run", name], { allowFailure: true });
    assert.equal(health.status, 0, `${health.stdout}${health.stderr}`);
    // The bundled prompts compile in the image (they would stop start-up otherwise) and the page is there.
    const page = await fetch(`${base}/`);
    assert.match(await page.text(), /<html/i);
  });

  test("starts before its PostgreSQL, unhealthy until the database answers, then healthy and logging to it", async () => {
    // As compose or Kubernetes start everything at once: the database's address answers nothing yet.
    const schema = `tripstream_deploy_${process.pid}`;
    psql(`CREATE SCHEMA ${schema}`);
    const port = await freePort();
    let proxy;
    try {
      const url = `postgres://postgres@127.0.0.1:${port}/test?options=-c%20search_path%3D${schema}`;
      const { name, base } = await run({ DATABASE_URL: url }, "/health/live");
      const notReady = await fetch(`${base}/health/ready`);
      assert.equal(notReady.status, 503);
      assert.equal((await notReady.json()).runLog, "down");
      assert.notEqual(podman(["healthcheck", "run", name], { allowFailure: true }).status, 0, "unhealthy");

      // The database comes up (a proxy to the machine's PostgreSQL opens on that address).
      proxy = await tcpProxy(port, POSTGRES_PORT);
      await waitFor("the replica to become ready", async () => (await readiness(base)) === true, 60_000, 250);
      assert.equal(podman(["healthcheck", "run", name], { allowFailure: true }).status, 0, "healthy");
      const response = await postStream(base, { location: "Jeju", startDate: "2026-04-01", endDate: "2026-04-02", budget: "high" });
      assert.equal((await readStream(response, () => {})).ended, "done");
      // Its run log went to PostgreSQL, into the schema the migrations made on the late start.
      await waitFor("the stream's row in plan_streaming_logs", () => psql(`SELECT count(*) FROM ${schema}.plan_streaming_logs`).trim() === "1");
    } finally {
      proxy?.close();
      psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  test("stops on SIGTERM within SHUTDOWN_GRACE_SECS, ending an unfinished stream as the contract says", async () => {
    const graceSecs = 2;
    // A 14-day trip with 100 ms between lines runs for well over the grace period.
    const { name, base } = await run({ SHUTDOWN_GRACE_SECS: String(graceSecs), OFFLINE_CHUNK_DELAY_MS: "100" });
    const response = await postStream(base, { location: "Busan", startDate: "2026-05-01", endDate: "2026-05-14", budget: "low" });
    const events = [];
    let signalled;
    const reading = readStream(response, ({ event }) => {
      events.push(event);
      if (events.length === 5) {
        signalled = performance.now();
        podman(["kill", "--signal", "TERM", name]);
      }
    });
    const { ended } = await reading;
    const code = Number(podman(["wait", name], { timeout: 30_000 }).stdout.trim());
    const stoppedAfter = (performance.now() - signalled) / 1000;
    assert.equal(code, 0, `a clean exit:\n${podman(["logs", name]).stderr}`);
    assert.ok(stoppedAfter < graceSecs + 3, `stopped ${stoppedAfter.toFixed(1)} s after SIGTERM (grace ${graceSecs} s)`);
    assert.ok(stoppedAfter >= graceSecs - 0.5, "the stream had its grace period");
    // Without Redis there is no replica to hand over to: the stream ends with a retryable error, then done.
    assert.equal(ended, "done");
    assert.deepEqual(events.slice(-2).map((e) => e.type), ["error", "done"]);
    assert.equal(events.at(-2).retryable, true);
  });
});

describe("the build stage's context (.dockerignore)", { skip }, () => {
  let files;
  before(() => {
    // podman applies the repository's .dockerignore exactly as a build does; list what it lets through.
    const probe = `localhost/tripstream-context-${process.pid}`;
    const dir = mkdtempSync(path.join(tmpdir(), "tripstream-context-"));
    const imagesBefore = allImages();
    try {
      const containerfile = path.join(dir, "Containerfile");
      spawnSync("sh", ["-c", `printf 'FROM ${BASE_IMAGE}\\nCOPY . /context\\n' > ${containerfile}`]);
      podman(["build", ...RUN, ...LIMITS, "--network", "host", "--file", containerfile, "--tag", probe, repoRoot]);
      const listing = podman([...RUN, "run", "--rm", ...LIMITS, "--network", "host", probe, "find", "/context", "-type", "f"]);
      files = new Set(listing.stdout.split("\n").filter(Boolean).map((f) => f.slice("/context/".length)));
    } finally {
      podman(["rmi", "--force", probe], { allowFailure: true });
      removeImagesSince(imagesBefore);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("holds the workspace, every file the crates embed, and nothing heavy", () => {
    const tracked = spawnSync("git", ["ls-files"], { cwd: repoRoot, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    // Every Rust source and manifest of the workspace, and the lock file.
    const needed = tracked.filter((f) => f === "Cargo.toml" || f === "Cargo.lock" || f === "rustfmt.toml" || /^crates\//.test(f));
    // Every file the crates' sources embed: include_str!/include_bytes! (relative to the source file), and
    // the directories of sqlx::migrate!, rust-embed's `folder` and a build script's reads (a path joined to
    // CARGO_MANIFEST_DIR), relative to the crate, whole.
    for (const source of needed.filter((f) => f.endsWith(".rs"))) {
      const text = readFileSync(path.join(repoRoot, source), "utf8");
      const crate = source.split("/").slice(0, 2).join("/");
      const join = (from, to) => path.posix.normalize(path.posix.join(from, to));
      for (const [, target] of text.matchAll(/include_(?:str|bytes)!\("([^"]+)"\)/g)) {
        needed.push(join(path.posix.dirname(source), target));
      }
      for (const [, dir] of text.matchAll(/(?:sqlx::migrate!\(|#\[folder = |CARGO_MANIFEST_DIR"\)\)\.join\()"([^"]+)"/g)) {
        const prefix = `${join(crate, dir)}/`;
        needed.push(...tracked.filter((f) => f.startsWith(prefix)));
      }
    }
    assert.ok(needed.some((f) => f.startsWith("data/destinations/")), "the bundled destinations are among them");
    assert.ok(needed.some((f) => f.startsWith("prompts/")) && needed.some((f) => f.startsWith("migrations/")));
    const missing = needed.filter((f) => !files.has(f));
    assert.deepEqual(missing, [], "files the build needs that .dockerignore leaves out");
    for (const f of files) assert.doesNotMatch(f, /^(target|\.git|clients|deploy)\/|node_modules\/|\.db$/, `${f} should not be in the context`);
    const bytes = [...files].reduce((sum, f) => sum + statSync(path.join(repoRoot, f)).size, 0);
    assert.ok(bytes < 20 * 1024 * 1024, `the context is ${(bytes / 1048576).toFixed(1)} MiB`);
  });

  test("is a workspace cargo resolves from its lock file alone", () => {
    // The context as the build stage sees it: `cargo build --locked` starts from exactly these files.
    const dir = mkdtempSync(path.join(tmpdir(), "tripstream-context-copy-"));
    try {
      for (const f of files) {
        mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        copyFileSync(path.join(repoRoot, f), path.join(dir, f));
      }
      // Every package of the lock file, for every platform (a fresh machine's cache holds only what its
      // own builds needed), then resolved offline: nothing but the lock file decides the versions.
      const fetched = spawnSync("cargo", ["fetch", "--locked"], { cwd: dir, encoding: "utf8" });
      assert.equal(fetched.status, 0, fetched.stderr);
      const metadata = spawnSync("cargo", ["metadata", "--locked", "--offline", "--format-version", "1"], {
        cwd: dir,
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      });
      assert.equal(metadata.status, 0, metadata.stderr);
      const members = JSON.parse(metadata.stdout).workspace_members.length;
      assert.equal(members, readdirSync(path.join(repoRoot, "crates")).length, "every crate is a member");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
