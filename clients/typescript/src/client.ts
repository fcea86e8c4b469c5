import { createParser, type EventSourceMessage } from "eventsource-parser";

import { TripstreamError } from "./errors.js";
import type { DestinationInfo, Health, Plan, PlanRequest, StreamEvent } from "./types.js";

export const STREAM_PATH = "/api/v1/plans/generate/stream";
export const GENERATE_PATH = "/api/v1/plans/generate";
export const DESTINATIONS_PATH = "/api/v1/destinations";
export const HEALTH_PATH = "/health";

const KNOWN_TYPES: ReadonlySet<string> = new Set(["status", "progress", "chunk", "day", "complete", "error", "done"]);

/** Options every call takes. */
export interface ClientOptions {
  /**
   * Where the server is, e.g. `http://localhost:8000`. Default `""`: the page's own origin (browsers only;
   * Node needs an absolute URL).
   */
  baseUrl?: string;
  /** Aborting it cancels the request, or the stream and the generation behind it. */
  signal?: AbortSignal;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** What comes with each event besides its data. */
export interface EventMeta {
  /** The SSE message's `id:` (a per-stream sequence number), if it had one. */
  id?: string;
}

export interface StreamPlanOptions extends ClientOptions {
  /** Called for every event, in order, `done` included. Events of unknown types are skipped. */
  onEvent?: (event: StreamEvent, meta: EventMeta) => void;
  /**
   * Sent as `Last-Event-ID`, for servers that resume a stream after that event. tripstream does not resume
   * yet; the header is sent as given and the stream starts as the server decides.
   */
  lastEventId?: string;
}

function endpoint(baseUrl: string | undefined, path: string): string {
  return `${(baseUrl ?? "").replace(/\/+$/, "")}${path}`;
}

async function send(url: string, init: RequestInit, options: ClientOptions): Promise<Response> {
  options.signal?.throwIfAborted();
  const fetchImpl = options.fetch ?? globalThis.fetch;
  try {
    return await fetchImpl(url, { ...init, signal: options.signal ?? null });
  } catch (cause) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new TripstreamError({ code: "network", message: `could not reach ${url}: ${describe(cause)}`, cause });
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

/** Turns a non-2xx answer into a {@link TripstreamError}, reading the contract's `{"error": {…}}` body. */
export async function errorFromResponse(response: Response): Promise<TripstreamError> {
  const status = response.status;
  const retryable = status >= 500 || status === 429 || status === 408;
  let text = "";
  try {
    text = await response.text();
  } catch {
    // The body is lost; the status still says what happened.
  }
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; field?: unknown } };
    const error = body?.error;
    if (error && typeof error.code === "string" && typeof error.message === "string") {
      return new TripstreamError({
        code: error.code as TripstreamError["code"],
        message: error.message,
        retryable,
        status,
        ...(typeof error.field === "string" ? { field: error.field } : {}),
      });
    }
  } catch {
    // Not the contract's JSON body: fall through.
  }
  const detail = text.trim().slice(0, 200);
  return new TripstreamError({
    code: "http_error",
    message: `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ""}${detail ? `: ${detail}` : ""}`,
    retryable,
    status,
  });
}

/**
 * Generates a plan over `POST /api/v1/plans/generate/stream`, calling `onEvent` for each event as it arrives,
 * and resolves with the final plan (the `complete` event's) once the stream is over.
 *
 * Rejects with a {@link TripstreamError} on an `error` event (`code` = the event's `error`, with `retryable`),
 * on a 4xx/5xx answer (`code`, `message`, `field` of its JSON body; no event is delivered), when the connection
 * breaks (`network`, with `lastEventId`) or the stream closes without a result (`stream_ended`); with
 * `signal.reason` (an `AbortError`) when aborted, after which no event is delivered.
 */
export async function streamPlan(request: PlanRequest, options: StreamPlanOptions = {}): Promise<Plan> {
  const { signal, onEvent } = options;
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    Accept: "text/event-stream",
    ...options.headers,
  };
  if (options.lastEventId !== undefined) headers["Last-Event-ID"] = options.lastEventId;

  const response = await send(
    endpoint(options.baseUrl, STREAM_PATH),
    { method: "POST", headers, body: JSON.stringify(request) },
    options,
  );
  if (!response.ok) throw await errorFromResponse(response);
  const contentType = response.headers.get("content-type") ?? "";
  if (!contentType.toLowerCase().startsWith("text/event-stream") || !response.body) {
    await response.body?.cancel().catch(() => {});
    throw new TripstreamError({
      code: "bad_response",
      message: `expected an event stream, got ${contentType || "no content type"}`,
      status: response.status,
    });
  }

  let lastEventId = options.lastEventId;
  let streamId: string | undefined;
  let plan: Plan | undefined;
  let failure: { code: string; message: string; retryable?: boolean } | undefined;
  let done = false;

  const received: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => received.push(message) });
  const context = () => ({
    ...(streamId !== undefined ? { streamId } : {}),
    ...(lastEventId !== undefined ? { lastEventId } : {}),
  });

  const handle = (message: EventSourceMessage) => {
    if (message.id !== undefined) lastEventId = message.id;
    let event: StreamEvent;
    try {
      event = JSON.parse(message.data) as StreamEvent;
    } catch (cause) {
      throw new TripstreamError({
        code: "bad_response",
        message: `an event's data is not JSON: ${message.data.slice(0, 80)}`,
        cause,
        ...context(),
      });
    }
    if (typeof event !== "object" || event === null || !KNOWN_TYPES.has(event.type)) return;
    if (event.streamId !== undefined && streamId === undefined) streamId = event.streamId;
    switch (event.type) {
      case "complete":
        plan = event.plan;
        break;
      case "error":
        failure = {
          code: event.error,
          message: event.message,
          ...(typeof event.retryable === "boolean" ? { retryable: event.retryable } : {}),
        };
        break;
      case "done":
        done = true;
        break;
    }
    onEvent?.(event, message.id !== undefined ? { id: message.id } : {});
  };

  const deliver = () => {
    for (const message of received.splice(0)) {
      if (done) return;
      signal?.throwIfAborted();
      handle(message);
    }
  };

  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    while (!done) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (cause) {
        if (signal?.aborted) throw signal.reason;
        throw new TripstreamError({
          code: "network",
          message: `the stream broke: ${describe(cause)}`,
          cause,
          ...context(),
        });
      }
      if (chunk.done) {
        // A last event without its trailing blank line still counts: end the line and the message.
        parser.feed(decoder.decode());
        parser.feed("\n\n");
        deliver();
        break;
      }
      parser.feed(decoder.decode(chunk.value, { stream: true }));
      deliver();
    }
  } finally {
    // After `done` nothing follows; on a failure or abort, let go of the connection.
    reader.cancel().catch(() => {});
  }

  if (failure) throw new TripstreamError({ ...failure, code: failure.code as TripstreamError["code"], ...context() });
  if (plan) return plan;
  throw new TripstreamError({
    code: "stream_ended",
    message: "the stream ended without a plan",
    ...context(),
  });
}

/** Generates a plan over `POST /api/v1/plans/generate` (one JSON document, no progress). */
export async function generatePlan(request: PlanRequest, options: ClientOptions = {}): Promise<Plan> {
  const response = await send(
    endpoint(options.baseUrl, GENERATE_PATH),
    {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...options.headers },
      body: JSON.stringify(request),
    },
    options,
  );
  if (!response.ok) throw await errorFromResponse(response);
  return (await readJson(response, options)) as Plan;
}

/** The destinations the server knows (`GET /api/v1/destinations`), with names and budget ceilings. */
export async function listDestinations(options: ClientOptions = {}): Promise<DestinationInfo[]> {
  const body = (await getJson(DESTINATIONS_PATH, options)) as { destinations: DestinationInfo[] };
  return body.destinations;
}

/** The server's status, version and providers (`GET /health`). */
export async function getHealth(options: ClientOptions = {}): Promise<Health> {
  return (await getJson(HEALTH_PATH, options)) as Health;
}

async function getJson(path: string, options: ClientOptions): Promise<unknown> {
  const response = await send(
    endpoint(options.baseUrl, path),
    { method: "GET", headers: { Accept: "application/json", ...options.headers } },
    options,
  );
  if (!response.ok) throw await errorFromResponse(response);
  return readJson(response, options);
}

async function readJson(response: Response, options: ClientOptions): Promise<unknown> {
  try {
    return await response.json();
  } catch (cause) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new TripstreamError({ code: "bad_response", message: "the answer is not JSON", cause, status: response.status });
  }
}
