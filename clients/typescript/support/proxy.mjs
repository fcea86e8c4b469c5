// An HTTP proxy for tests, between a client and `tripstream serve`, that cuts event streams where a test says:
// mid-message, either abruptly (the TCP connection ends inside the chunked body: a network error for the
// client) or cleanly (the HTTP response ends early: a stream closed without `done`). It records every request
// and can be pointed at another server (a different replica) at any time.
import http from "node:http";

/**
 * A cut: `at(body)` is the byte offset (in the response body seen so far, decoded as latin1 so offsets are
 * bytes) to cut at, or -1 to keep going; `how` is `"reset"` (end the TCP connection) or `"end"` (end the
 * HTTP response).
 *
 * @typedef {{ at: (body: string) => number, how: "reset" | "end" }} Cut
 */

/** Cuts `offset` bytes into the `n`-th (1-based) message whose data contains `"type":"<type>"`. */
export function inside(type, n = 1, offset = 8) {
  return (body) => {
    let from = 0;
    for (let i = 0; i < n; i++) {
      const at = body.indexOf(`"type":"${type}"`, from);
      if (at < 0) return -1;
      from = at + 1;
    }
    // Cut only once the whole of that message has arrived, so the bytes after `offset` really are dropped.
    const end = body.indexOf("\n\n", from);
    return end < 0 ? -1 : from - 1 + offset;
  };
}

/** Cuts right after the (complete) first message whose data contains `"type":"<type>"`. */
export function after(type) {
  return (body) => {
    const at = body.indexOf(`"type":"${type}"`);
    if (at < 0) return -1;
    const end = body.indexOf("\n\n", at);
    return end < 0 ? -1 : end + 2;
  };
}

/**
 * Starts the proxy in front of `target` (a base URL). Returns `{ baseUrl, requests, cuts, setTarget, close }`:
 * push {@link Cut}s to `cuts`, and each event-stream response takes the next one (none: passed through whole).
 */
export async function startProxy(target) {
  let upstream = new URL(target);
  /** @type {{ method: string, url: string, headers: http.IncomingHttpHeaders, status?: number, cut?: boolean }[]} */
  const requests = [];
  /** @type {Cut[]} */
  const cuts = [];

  const server = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, headers: req.headers };
    requests.push(entry);
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (answer) => {
        entry.status = answer.statusCode;
        res.writeHead(answer.statusCode, answer.headers);
        const isStream = String(answer.headers["content-type"] ?? "").startsWith("text/event-stream");
        const cut = isStream ? cuts.shift() : undefined;
        if (!cut) {
          answer.pipe(res);
          return;
        }
        let body = "";
        let stopped = false;
        answer.on("data", (data) => {
          if (stopped) return;
          const before = body.length;
          body += data.toString("latin1");
          const at = cut.at(body);
          if (at < 0) {
            res.write(data);
            return;
          }
          stopped = true;
          entry.cut = true;
          answer.destroy();
          const rest = data.subarray(0, Math.max(0, at - before));
          if (cut.how === "end") {
            res.end(rest);
          } else {
            // Written through to the socket first, then the connection goes, inside the chunked body.
            res.write(rest, () => res.socket?.end());
          }
        });
        answer.on("end", () => {
          if (!stopped) res.end();
        });
        answer.on("error", () => res.destroy());
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    requests,
    cuts,
    /** Sends what comes next to another server. */
    setTarget(next) {
      upstream = new URL(next);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
