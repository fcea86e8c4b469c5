// What the deployment tests run: real `tripstream serve` replicas sharing the machine's Redis, and Debian's
// nginx in front of them with deploy/nginx/tripstream.conf (only its addresses changed). Every process is
// started here and stopped by its own pid.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

// The binary (TRIPSTREAM_BIN, else cargo's debug build) and free ports, as the client's tests find them.
import { freePort, repoRoot, tripstreamBinary } from "../../clients/typescript/support/server.mjs";

export { freePort, repoRoot, tripstreamBinary };

/** Packages installed for the TypeScript client (`npm ci` in clients/typescript): typescript, eventsource-parser. */
export const clientRequire = createRequire(path.join(repoRoot, "clients/typescript/package.json"));

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than `undefined`/`false`, or fails after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = 20_000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A child process's output and exit, as they happen. */
function track(child) {
  const state = { output: "", exit: undefined };
  child.stdout.on("data", (d) => (state.output += d));
  child.stderr.on("data", (d) => (state.output += d));
  state.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve((state.exit = { code, signal }))));
  return state;
}

/** The replica's readiness: `true` on 200, otherwise the status or the connection error. */
export async function readiness(base) {
  try {
    const response = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(3000) });
    await response.body?.cancel();
    return response.status === 200 ? true : response.status;
  } catch (error) {
    return error.cause?.code ?? String(error);
  }
}

/** A Redis key prefix no other test or run uses. */
export function uniquePrefix(name) {
  return `tripstream_deploy_${name}_${process.pid}_${Date.now().toString(36)}:`;
}

/** Deletes what a test left in the shared Redis under its prefix. */
export function dropRedisPrefix(prefix) {
  const url = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
  const keys = spawnSync("redis-cli", ["-u", url, "--scan", "--pattern", `${prefix}*`], { encoding: "utf8" });
  const list = (keys.stdout ?? "").split("\n").filter(Boolean);
  for (let i = 0; i < list.length; i += 500) spawnSync("redis-cli", ["-u", url, "del", ...list.slice(i, i + 500)]);
}

/**
 * The replicas' run-log database: one SQLite file they share (as they would share PostgreSQL), so an admin
 * key made in it works on every replica.
 */
const sharedDatabase = `sqlite://${path.join(mkdtempSync(path.join(tmpdir(), "tripstream-deploy-")), "runlog.db")}`;
let admin;

/** An admin key in the replicas' database (`/health`'s details need one), made once with the CLI. */
export function adminKey() {
  if (admin) return admin;
  const made = spawnSync(
    tripstreamBinary(),
    ["keys", "create", "--name", "deployment test", "--admin", "--json", "--database-url", sharedDatabase],
    { encoding: "utf8", env: { PATH: process.env.PATH } },
  );
  if (made.status !== 0) throw new Error(`tripstream keys create failed: ${made.stderr}`);
  admin = JSON.parse(made.stdout).key;
  return admin;
}

/**
 * Starts `tripstream serve` on `port` with the deployment's shape: Redis shared under `prefix`, offline
 * planner, info logs captured (the test waits on some of them). Resolves once `/health/ready` answers 200.
 */
export async function startReplica({ port, prefix, env = {} }) {
  const workDir = mkdtempSync(path.join(tmpdir(), "tripstream-replica-"));
  const child = spawn(tripstreamBinary(), ["serve"], {
    cwd: workDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HOST: "127.0.0.1",
      PORT: String(port),
      REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: sharedDatabase,
      LLM_PROVIDER: "offline",
      WEATHER_SOURCES: "none",
      STREAM_CANCEL_GRACE_SECS: "30",
      // The test's clients all come through one nginx from one address: above the per-address rate.
      RATE_LIMIT_ANONYMOUS: "100000",
      RATE_LIMIT_BURST: "100000",
      RUST_LOG: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const state = track(child);
  const base = `http://127.0.0.1:${port}`;
  const replica = {
    port,
    base,
    pid: child.pid,
    exited: state.exited,
    output: () => state.output,
    running: () => state.exit === undefined,
    signal: (name) => state.exit === undefined && process.kill(child.pid, name),
    async stop() {
      if (state.exit === undefined) process.kill(child.pid, "SIGKILL");
      await state.exited;
      rmSync(workDir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`the replica on ${base} to be ready`, async () => {
      if (state.exit !== undefined) throw new Error(`the replica exited (${JSON.stringify(state.exit)}):\n${state.output}`);
      return (await readiness(base)) === true;
    });
  } catch (error) {
    await replica.stop();
    throw error;
  }
  return replica;
}

/** How many generations a replica is running now (`/health`). */
export async function generationsInFlight(replica) {
  const response = await fetch(`${replica.base}/health`, { headers: { authorization: `Bearer ${adminKey()}` } });
  return (await response.json()).generationsInFlight;
}

/**
 * deploy/nginx/tripstream.conf with the addresses of this machine: each replacement must match exactly once,
 * so the test runs the file as it is, not a copy that drifted from it.
 */
export function siteConfig({ listen, upstreams, accessLog }) {
  let text = readFileSync(path.join(repoRoot, "deploy/nginx/tripstream.conf"), "utf8");
  const replace = (from, to) => {
    const count = text.split(from).length - 1;
    if (count !== 1) throw new Error(`deploy/nginx/tripstream.conf: expected "${from}" once, found it ${count} times`);
    text = text.replace(from, to);
  };
  // The one `server` line stands for every replica, as the compose service's name resolves to each.
  const server = text.match(/^ *server tripstream:8000 (.*)$/m);
  if (!server) throw new Error("deploy/nginx/tripstream.conf: no `server tripstream:8000` line");
  replace(server[0], upstreams.map((port) => `    server 127.0.0.1:${port} ${server[1]}`).join("\n"));
  replace("listen 8080;", `listen 127.0.0.1:${listen};`);
  replace("access_log /var/log/nginx/access.log ", `access_log ${accessLog} `);
  return text;
}

/** Debian's nginx (`/usr/sbin/nginx`) with the site config in front of `upstreams` (ports). */
export async function startNginx(upstreams) {
  const dir = mkdtempSync(path.join(tmpdir(), "tripstream-nginx-"));
  const port = await freePort();
  const accessLog = path.join(dir, "access.log");
  writeFileSync(path.join(dir, "tripstream.conf"), siteConfig({ listen: port, upstreams, accessLog }));
  // The smallest main configuration around the site, as nginx.conf is around conf.d/ in a real install.
  writeFileSync(
    path.join(dir, "nginx.conf"),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/tripstream.conf;
}
`,
  );
  const nginx = process.env.NGINX_BIN ?? "/usr/sbin/nginx";
  const args = ["-e", "stderr", "-p", dir, "-c", path.join(dir, "nginx.conf")];
  const check = spawnSync(nginx, [...args, "-t"], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`nginx -t failed:\n${check.stderr}`);
  const child = spawn(nginx, [...args, "-g", "daemon off;"], { stdio: ["ignore", "pipe", "pipe"] });
  const state = track(child);
  const base = `http://127.0.0.1:${port}`;
  await waitFor("nginx to listen", () => {
    if (state.exit !== undefined) throw new Error(`nginx exited:\n${state.output}`);
    return new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => (socket.destroy(), resolve(true)));
      socket.on("error", () => resolve(false));
    });
  });
  return {
    port,
    base,
    output: () => state.output,
    /** The access log's lines, parsed: request, status, upstream addresses tried, request id. */
    accessLog() {
      if (!existsSync(accessLog)) return [];
      return readFileSync(accessLog, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => {
          const m = line.match(/"(\S+) (\S+) [^"]*" (\d+) \d+ rt=\S+ upstream=(.*) ustatus=(.*) id=(\S*)$/);
          if (!m) throw new Error(`unexpected access log line: ${line}`);
          return { method: m[1], uri: m[2], status: Number(m[3]), upstreams: m[4].split(", "), upstreamStatus: m[5], id: m[6], line };
        });
    },
    async stop() {
      // QUIT: nginx's graceful stop; the test's streams are over by then.
      if (state.exit === undefined) process.kill(child.pid, "SIGQUIT");
      const timer = setTimeout(() => state.exit === undefined && process.kill(child.pid, "SIGKILL"), 5000);
      await state.exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Two replicas sharing Redis under one fresh prefix, and nginx in front of them. */
export async function startCluster(name, env = {}) {
  const prefix = uniquePrefix(name);
  const ports = [await freePort(), await freePort()];
  const replicas = await Promise.all(ports.map((port) => startReplica({ port, prefix, env })));
  const nginx = await startNginx(ports);
  return {
    prefix,
    replicas,
    nginx,
    async stop() {
      await nginx.stop();
      await Promise.all(replicas.map((r) => r.stop()));
      dropRedisPrefix(prefix);
    },
  };
}

const { createParser } = clientRequire("eventsource-parser");

/**
 * Reads an SSE response, calling `onEvent({ id, event, at })` for each message (`at`: ms since `t0`), until
 * the body ends or `onEvent` returns `true`. Resolves with `{ ended: "done" | "closed" | "broken" | "stopped" }`.
 */
export async function readStream(response, onEvent, t0 = performance.now()) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let stop = false;
  let sawDone = false;
  const parser = createParser({
    onEvent(message) {
      if (stop) return;
      const event = JSON.parse(message.data);
      if (event.type === "done") sawDone = true;
      if (onEvent({ id: message.id, event, at: performance.now() - t0 }) === true) stop = true;
    },
  });
  try {
    while (!stop) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } catch {
    return { ended: "broken" };
  }
  if (stop) {
    await reader.cancel().catch(() => {});
    return { ended: sawDone ? "done" : "stopped" };
  }
  return { ended: sawDone ? "done" : "closed" };
}

/** POSTs a plan request to the stream endpoint. */
export function postStream(base, request, headers = {}) {
  return fetch(`${base}/api/v1/plans/generate/stream`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof request === "string" ? request : JSON.stringify(request),
  });
}
