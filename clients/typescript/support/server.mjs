// Starts a real `tripstream serve` for a test file: built with cargo (or TRIPSTREAM_BIN), on a free port of
// 127.0.0.1, ready once /health answers; stopped by `stop()`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

let built;

/** The `tripstream` binary: `TRIPSTREAM_BIN`, else `cargo build -p tripstream` (respecting CARGO_TARGET_DIR). */
export function tripstreamBinary() {
  if (process.env.TRIPSTREAM_BIN) return path.resolve(process.env.TRIPSTREAM_BIN);
  if (built) return built;
  const result = spawnSync("cargo", ["build", "-p", "tripstream", "--quiet"], { cwd: repoRoot, stdio: "inherit" });
  if (result.status !== 0) throw new Error("cargo build -p tripstream failed");
  const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(repoRoot, process.env.CARGO_TARGET_DIR) : path.join(repoRoot, "target");
  built = path.join(targetDir, "debug", "tripstream");
  if (!existsSync(built)) throw new Error(`no binary at ${built}`);
  return built;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the server with `env` on top of a quiet, offline, deterministic configuration.
 * Returns `{ baseUrl, stop, output }`.
 */
export async function startServer(env = {}) {
  const binary = tripstreamBinary();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // Its own working directory: whatever the server writes relative to it (a local run log) goes there.
    const workDir = mkdtempSync(path.join(tmpdir(), "tripstream-serve-"));
    const child = spawn(binary, ["serve"], {
      cwd: workDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        HOST: "127.0.0.1",
        PORT: String(port),
        LLM_PROVIDER: "offline",
        WEATHER_SOURCES: "none",
        SHUTDOWN_GRACE_SECS: "1",
        RUST_LOG: "warn",
        // Every test comes from 127.0.0.1, faster than a person would: above the per-address rate.
        RATE_LIMIT_ANONYMOUS: "100000",
        RATE_LIMIT_BURST: "100000",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    let exited = false;
    const exit = new Promise((resolve) => child.on("exit", (code) => { exited = true; resolve(code); }));
    const baseUrl = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (!exited) child.kill("SIGTERM");
      const timer = setTimeout(() => { if (!exited) child.kill("SIGKILL"); }, 5000);
      await exit;
      clearTimeout(timer);
      rmSync(workDir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline) {
      try {
        const response = await fetch(`${baseUrl}/health`);
        if (response.ok) {
          await response.body?.cancel();
          return { baseUrl, stop, output: () => output };
        }
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
    await stop();
    if (attempt >= 3) throw new Error(`tripstream serve did not become healthy on ${baseUrl}:\n${output}`);
  }
}

/**
 * Client options carrying a page session, as a browser holds it after loading `/`: the cookie that owns the
 * plans the page generates.
 */
export async function pageSession(baseUrl) {
  const response = await fetch(`${baseUrl}/`);
  const cookie = response.headers.get("set-cookie")?.split(";")[0];
  if (!/^tripstream_page=ses_/.test(cookie ?? "")) throw new Error(`GET / set no page session cookie: ${cookie}`);
  return { baseUrl, headers: { cookie } };
}
