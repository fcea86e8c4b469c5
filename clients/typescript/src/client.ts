import { createParser, type EventSourceMessage } from "eventsource-parser";

import { TripstreamError, type TripstreamErrorInit } from "./errors.js";
import type {
  Catalog,
  DestinationInfo,
  GeneratedPlan,
  Health,
  Plan,
  PlanRequest,
  PlanSummary,
  SavedPlan,
  Share,
  SharedPlan,
  StreamEvent,
} from "./types.js";

export const STREAM_PATH = "/api/v1/plans/generate/stream";
export const GENERATE_PATH = "/api/v1/plans/generate";
export const DESTINATIONS_PATH = "/api/v1/destinations";
export const HEALTH_PATH = "/health";
export const PLANS_PATH = "/api/v1/plans";
export const SHARES_PATH = "/api/v1/shares";

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
  /** An API key, sent as `Authorization: Bearer …` (needed where the server requires keys). */
  apiKey?: string;
}

/** What comes with each event besides its data. */
export interface EventMeta {
  /** The SSE message's `id:` (a per-stream sequence number), if it had one. */
  id?: string;
}

/** What {@link StreamPlanOptions.onReconnect} is told before each try to resume a broken stream. */
export interface ReconnectInfo {
  /**
   * 1 for the first try after a break, counting up while tries fail; back to 1 for a later break once a
   * resumed stream has delivered an event.
   */
  attempt: number;
  /** The `id:` of the last event delivered; the resumed stream starts after it. Absent when none arrived. */
  lastEventId?: string;
  /** How long the client waits before this try, in milliseconds. */
  delayMs: number;
  /** The stream being resumed. */
  streamId: string;
  /** Why: the break itself, or the previous try's failure. */
  error: TripstreamError;
}

/** What {@link StreamPlanOptions.onReconnected} is told when a try to resume was answered with the stream. */
export interface ReconnectedInfo {
  attempt: number;
  lastEventId?: string;
  streamId: string;
}

export interface StreamPlanOptions extends ClientOptions {
  /**
   * Called for every event, in order, `done` included, each once: across reconnections the ids continue
   * with no repeat and no gap. Events of unknown types are skipped.
   */
  onEvent?: (event: StreamEvent, meta: EventMeta) => void;
  /**
   * Sent as `Last-Event-ID` with the POST: tripstream then continues the stream of the identical request it
   * still holds after that event (or answers `204` if nothing follows), instead of starting a generation.
   */
  lastEventId?: string;
  /**
   * How many times in a row to try to resume a stream that broke before `done` (default 5; `0`: never).
   * Each try is a `GET /api/v1/plans/streams/{streamId}/events` with `Last-Event-ID`.
   */
  maxReconnects?: number;
  /**
   * The first wait before resuming when the server gave no `retry:` hint (default 1000 ms). The server's
   * hint, when given, is the base instead; the wait doubles with each failed try.
   */
  reconnectDelayMs?: number;
  /** The longest wait between tries (default 10,000 ms). */
  maxReconnectDelayMs?: number;
  /** Called when the stream broke and before each try to resume it (then the client waits `delayMs`). */
  onReconnect?: (info: ReconnectInfo) => void;
  /** Called when a try to resume is answered with the stream; its events follow through `onEvent`. */
  onReconnected?: (info: ReconnectedInfo) => void;
}

export const DEFAULT_MAX_RECONNECTS = 5;
export const DEFAULT_RECONNECT_DELAY_MS = 1000;
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 10_000;

/** Where a broken stream is resumed: `GET` with `Last-Event-ID`. */
export function resumePath(streamId: string): string {
  return `/api/v1/plans/streams/${encodeURIComponent(streamId)}/events`;
}

/** The caller's headers: theirs, and their key as `Authorization`. */
function authHeaders(options: ClientOptions): Record<string, string> {
  return {
    ...options.headers,
    ...(options.apiKey !== undefined ? { Authorization: `Bearer ${options.apiKey}` } : {}),
  };
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
 * When the connection breaks before `done` (a network error, or a close without `done`), the stream is
 * resumed where it broke: `GET /api/v1/plans/streams/{streamId}/events` with `Last-Event-ID`, after a wait
 * (the server's `retry:` hint, doubling with each failed try), up to `maxReconnects` tries in a row. The
 * events continue through `onEvent` as if nothing happened: each once, in order.
 *
 * Rejects with a {@link TripstreamError} on an `error` event (`code` = the event's `error`, with `retryable`),
 * on a 4xx/5xx answer to the POST (`code`, `message`, `field` of its JSON body; no event is delivered), when
 * the stream cannot be resumed (`stream_expired` for a stream the server no longer knows; `network` or
 * `stream_ended`, with `lastEventId`, once the tries are used up); with `signal.reason` (an `AbortError`)
 * when aborted, also while waiting to reconnect, after which no event is delivered.
 */
export async function streamPlan(request: PlanRequest, options: StreamPlanOptions = {}): Promise<Plan> {
  return streamFrom(STREAM_PATH, JSON.stringify(request), options);
}

/** Options of {@link regenerateDay}: a stream's, and what the new day should be like. */
export interface RegenerateDayOptions extends StreamPlanOptions {
  /** The traveller's wish for the day ("more food, less walking", "실내 위주로"): at most 200 characters. */
  instruction?: string;
}

/** Where day `n` of a saved plan is written again. */
export function regeneratePath(planId: string, n: number): string {
  return `${PLANS_PATH}/${encodeURIComponent(planId)}/days/${encodeURIComponent(String(n))}/regenerate`;
}

/**
 * Writes day `n` (1 for the first) of the caller's saved plan `planId` again over
 * `POST /api/v1/plans/{planId}/days/{n}/regenerate`, streamed exactly like {@link streamPlan} (the same
 * events through `onEvent`, one `day` event for the new day, the same resume after a broken connection),
 * and resolves with the whole plan, whose other days are unchanged; the `complete` event's `planId` names
 * the saved plan, now at its next version. Rejects like {@link streamPlan}: `plan_not_found` (unknown, or
 * someone else's), `invalid_request` with `field` `day` or `instruction`.
 */
export async function regenerateDay(planId: string, n: number, options: RegenerateDayOptions = {}): Promise<Plan> {
  const { instruction, ...rest } = options;
  const body = JSON.stringify(instruction !== undefined ? { instruction } : {});
  return streamFrom(regeneratePath(planId, n), body, rest);
}

/** One stream opened by a `POST` of `body` to `path`, read to its end and resumed where it breaks. */
async function streamFrom(path: string, body: string, options: StreamPlanOptions): Promise<Plan> {
  const { signal, onEvent } = options;
  const maxReconnects = Math.max(0, Math.floor(options.maxReconnects ?? DEFAULT_MAX_RECONNECTS));
  const baseDelay = Math.max(0, options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS);
  const maxDelay = Math.max(0, options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS);
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    Accept: "text/event-stream",
    ...authHeaders(options),
  };
  if (options.lastEventId !== undefined) headers["Last-Event-ID"] = options.lastEventId;

  const response = await send(endpoint(options.baseUrl, path), { method: "POST", headers, body }, options);
  if (!response.ok) throw await errorFromResponse(response);

  let lastEventId = options.lastEventId;
  let streamId = response.headers.get("x-stream-id") ?? undefined;
  /** The stream's resume token: what reaches it again, with or without a key. */
  let resumeToken = response.headers.get("x-resume-token") ?? undefined;
  /** The server's `retry:` hint, in milliseconds. */
  let retryMs: number | undefined;
  let plan: Plan | undefined;
  let failure: { code: string; message: string; retryable?: boolean } | undefined;
  let done = false;
  /** The server said (`204`) the stream is over, with nothing after `lastEventId`. */
  let overOnServer = false;

  const context = () => ({
    ...(streamId !== undefined ? { streamId } : {}),
    ...(lastEventId !== undefined ? { lastEventId } : {}),
  });

  if (response.status === 204) {
    overOnServer = true;
  } else {
    await expectEventStream(response, context);
  }

  /** Whether a message's id is one already delivered (a resumed stream starts after `lastEventId`). */
  const seen = (id: string): boolean =>
    lastEventId !== undefined && /^\d+$/.test(id) && /^\d+$/.test(lastEventId) && Number(id) <= Number(lastEventId);

  /**
   * Reads one connection: `null` once `done` arrived, else why it ended early and how many events it
   * delivered. Throws on an abort and on data that is not an event stream.
   */
  const read = async (response: Response): Promise<{ error: TripstreamError; delivered: number } | null> => {
    const received: EventSourceMessage[] = [];
    const parser = createParser({
      onEvent: (message) => received.push(message),
      onRetry: (ms) => {
        retryMs = ms;
      },
    });
    let delivered = 0;
    let truncated = false;

    const handle = (message: EventSourceMessage, atEnd: boolean) => {
      let event: StreamEvent;
      try {
        event = JSON.parse(message.data) as StreamEvent;
      } catch (cause) {
        // Flushed when the connection closed: the close cut this message short. It is sent again on resume.
        if (atEnd) {
          truncated = true;
          return;
        }
        throw new TripstreamError({
          code: "bad_response",
          message: `an event's data is not JSON: ${message.data.slice(0, 80)}`,
          cause,
          ...context(),
        });
      }
      if (message.id !== undefined) {
        if (seen(message.id)) return;
        lastEventId = message.id;
      }
      delivered += 1;
      if (typeof event !== "object" || event === null || !KNOWN_TYPES.has(event.type)) return;
      if (event.streamId !== undefined && streamId === undefined) streamId = event.streamId;
      if (event.resumeToken !== undefined && resumeToken === undefined) resumeToken = event.resumeToken;
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

    const deliver = (atEnd: boolean) => {
      for (const message of received.splice(0)) {
        if (done) return;
        signal?.throwIfAborted();
        handle(message, atEnd);
      }
    };

    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    try {
      while (!done) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (cause) {
          if (signal?.aborted) throw signal.reason;
          const error = new TripstreamError({
            code: "network",
            message: `the stream broke: ${describe(cause)}`,
            cause,
            ...context(),
          });
          return { error, delivered };
        }
        if (chunk.done) {
          // A last event without its trailing blank line still counts: end the line and the message.
          parser.feed(decoder.decode());
          parser.feed("\n\n");
          deliver(true);
          if (done) break;
          const error = new TripstreamError({
            code: "stream_ended",
            message: truncated ? "the stream closed in the middle of an event" : "the stream ended without a plan",
            ...context(),
          });
          return { error, delivered };
        }
        parser.feed(decoder.decode(chunk.value, { stream: true }));
        deliver(false);
      }
    } finally {
      // After `done` nothing follows; on a failure or abort, let go of the connection.
      reader.cancel().catch(() => {});
    }
    return null;
  };

  /** Attempts after a break (consecutive failed tries), reset once a resumed stream delivers an event. */
  let attempt = 0;

  /**
   * Tries to resume the stream after `broken`: its response, or `null` when the server says it is over
   * (`204`). Throws when it cannot be resumed.
   */
  const resume = async (id: string, broken: TripstreamError): Promise<Response | null> => {
    let why = broken;
    for (;;) {
      attempt += 1;
      if (attempt > maxReconnects) {
        const tries = `${maxReconnects} ${maxReconnects === 1 ? "try" : "tries"}`;
        throw new TripstreamError({
          code: broken.code,
          message:
            why === broken
              ? `${broken.message}; not resumed after ${tries}`
              : `${broken.message}; not resumed after ${tries} (the last: ${why.message})`,
          cause: why,
          ...context(),
        });
      }
      const delayMs = Math.min(maxDelay, (retryMs ?? baseDelay) * 2 ** (attempt - 1));
      options.onReconnect?.({
        attempt,
        delayMs,
        streamId: id,
        error: why,
        ...(lastEventId !== undefined ? { lastEventId } : {}),
      });
      await sleep(delayMs, signal);

      const resumeHeaders: Record<string, string> = { Accept: "text/event-stream", ...authHeaders(options) };
      if (lastEventId !== undefined) resumeHeaders["Last-Event-ID"] = lastEventId;
      if (resumeToken !== undefined) resumeHeaders["X-Resume-Token"] = resumeToken;
      let answer: Response;
      try {
        answer = await send(endpoint(options.baseUrl, resumePath(id)), { method: "GET", headers: resumeHeaders }, options);
      } catch (error) {
        if (!(error instanceof TripstreamError)) throw error; // the abort's reason
        why = error;
        continue;
      }
      if (answer.status === 204) {
        await answer.body?.cancel().catch(() => {});
        return null;
      }
      if (answer.status === 404) {
        const detail = await errorFromResponse(answer);
        throw new TripstreamError({
          code: "stream_expired",
          message: `the stream broke and can no longer be resumed: ${detail.message}`,
          status: 404,
          cause: detail,
          ...context(),
        });
      }
      if (!answer.ok) {
        const error = await errorFromResponse(answer);
        if (!error.retryable) throw withContext(error, context());
        why = error;
        continue;
      }
      await expectEventStream(answer, context);
      options.onReconnected?.({ attempt, streamId: id, ...(lastEventId !== undefined ? { lastEventId } : {}) });
      return answer;
    }
  };

  let current: Response | null = overOnServer ? null : response;
  while (current) {
    const broken = await read(current);
    // `done`, or the outcome is known already: a missing `done` changes nothing.
    if (!broken || plan || failure) break;
    if (broken.delivered > 0) attempt = 0;
    if (streamId === undefined || maxReconnects === 0) throw broken.error;
    // Tries in a row since the last event: a connection that broke before delivering one counts as failed.
    current = await resume(streamId, broken.error);
    if (!current) overOnServer = true;
  }

  if (failure) throw new TripstreamError({ ...failure, code: failure.code as TripstreamError["code"], ...context() });
  if (plan) return plan;
  if (overOnServer) {
    throw new TripstreamError({
      code: "stream_ended",
      message: `the stream is over on the server, but its plan was not received (nothing follows event ${lastEventId ?? "none"})`,
      ...context(),
    });
  }
  throw new TripstreamError({
    code: "stream_ended",
    message: "the stream ended without a plan",
    ...context(),
  });
}

/** Rejects an answer that is not an event stream with `bad_response`. */
async function expectEventStream(response: Response, context: () => Partial<TripstreamErrorInit>): Promise<void> {
  const contentType = response.headers.get("content-type") ?? "";
  if (contentType.toLowerCase().startsWith("text/event-stream") && response.body) return;
  await response.body?.cancel().catch(() => {});
  throw new TripstreamError({
    code: "bad_response",
    message: `expected an event stream, got ${contentType || "no content type"}`,
    status: response.status,
    ...context(),
  });
}

/** The same error, with the stream's id and last event id. */
function withContext(error: TripstreamError, context: Partial<TripstreamErrorInit>): TripstreamError {
  return new TripstreamError({
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.field !== undefined ? { field: error.field } : {}),
    ...(error.cause !== undefined ? { cause: error.cause } : {}),
    ...context,
  });
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Generates a plan over `POST /api/v1/plans/generate` (one JSON document, no progress), with `planId`, the
 * caller's saved copy.
 */
export async function generatePlan(request: PlanRequest, options: ClientOptions = {}): Promise<GeneratedPlan> {
  const response = await send(
    endpoint(options.baseUrl, GENERATE_PATH),
    {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders(options) },
      body: JSON.stringify(request),
    },
    options,
  );
  if (!response.ok) throw await errorFromResponse(response);
  return (await readJson(response, options)) as GeneratedPlan;
}

/** The destinations the server knows (`GET /api/v1/destinations`), with names and budget ceilings. */
export async function listDestinations(options: ClientOptions = {}): Promise<DestinationInfo[]> {
  return (await getCatalog(options)).destinations;
}

/**
 * The bundled destinations, and whether the server plans places beyond them (`plansAnywhere`: an LLM
 * provider is configured; the offline planner knows only the list).
 */
export async function getCatalog(options: ClientOptions = {}): Promise<Catalog> {
  return (await getJson(DESTINATIONS_PATH, options)) as Catalog;
}

/**
 * The server's status (`GET /health`); its version, providers and stores only for an admin key
 * (`apiKey`).
 */
export async function getHealth(options: ClientOptions = {}): Promise<Health> {
  return (await getJson(HEALTH_PATH, options)) as Health;
}

/**
 * The latest version of one of the caller's saved plans (`GET /api/v1/plans/{planId}`), or version `version`.
 * Another caller's plan fails like an unknown one: `plan_not_found`.
 */
export async function getPlan(planId: string, options: ClientOptions & { version?: number } = {}): Promise<SavedPlan> {
  const id = encodeURIComponent(planId);
  const path = options.version === undefined ? `${PLANS_PATH}/${id}` : `${PLANS_PATH}/${id}/versions/${options.version}`;
  return (await getJson(path, options)) as SavedPlan;
}

/** The caller's saved plans, the most recently changed first (`GET /api/v1/plans`, at most `limit`, 1–100). */
export async function listPlans(options: ClientOptions & { limit?: number } = {}): Promise<PlanSummary[]> {
  const query = options.limit === undefined ? "" : `?limit=${options.limit}`;
  return ((await getJson(`${PLANS_PATH}${query}`, options)) as { plans: PlanSummary[] }).plans;
}

/** A new read-only link to one of the caller's plans (`POST /api/v1/plans/{planId}/share`). */
export async function sharePlan(planId: string, options: ClientOptions = {}): Promise<Share> {
  return (await requestJson("POST", `${PLANS_PATH}/${encodeURIComponent(planId)}/share`, options)) as Share;
}

/** The plan behind a share link, for anyone with it (`GET /api/v1/shares/{shareId}`). */
export async function getSharedPlan(shareId: string, options: ClientOptions = {}): Promise<SharedPlan> {
  return (await getJson(`${SHARES_PATH}/${encodeURIComponent(shareId)}`, options)) as SharedPlan;
}

/** Whose calendar: one of the caller's saved plans, or the plan behind a share link. */
export type CalendarOf = { planId: string } | { shareId: string };

/**
 * Where a plan's calendar file is (RFC 5545, one event per activity in the destination's time zone):
 * `GET /api/v1/plans/{planId}/calendar.ics` for the caller's own plan, `GET /api/v1/shares/{shareId}/calendar.ics`
 * for a share link. For a link or a calendar app's "subscribe"; the plan's own URL needs the caller's
 * credentials (a key, or the page's session cookie), a share link's does not.
 */
export function calendarUrl(of: CalendarOf, options: Pick<ClientOptions, "baseUrl"> = {}): string {
  const path =
    "planId" in of
      ? `${PLANS_PATH}/${encodeURIComponent(of.planId)}/calendar.ics`
      : `${SHARES_PATH}/${encodeURIComponent(of.shareId)}/calendar.ics`;
  return endpoint(options.baseUrl, path);
}

/**
 * A plan's calendar file as text (`text/calendar`), fetched with the client's credentials. Another caller's
 * plan fails like an unknown one (`plan_not_found`), a revoked link with `share_not_found`.
 */
export async function getCalendar(of: CalendarOf, options: ClientOptions = {}): Promise<string> {
  const response = await send(
    calendarUrl(of, options),
    { method: "GET", headers: { Accept: "text/calendar", ...authHeaders(options) } },
    options,
  );
  if (!response.ok) throw await errorFromResponse(response);
  return response.text();
}

/** Revokes a link to one of the caller's plans (`DELETE /api/v1/shares/{shareId}`); it is `share_not_found` after. */
export async function revokeShare(shareId: string, options: ClientOptions = {}): Promise<void> {
  await requestJson("DELETE", `${SHARES_PATH}/${encodeURIComponent(shareId)}`, options);
}

async function getJson(path: string, options: ClientOptions): Promise<unknown> {
  return requestJson("GET", path, options);
}

/** A request without a body; its JSON answer (`undefined` for `204`). */
async function requestJson(method: string, path: string, options: ClientOptions): Promise<unknown> {
  const response = await send(
    endpoint(options.baseUrl, path),
    { method, headers: { Accept: "application/json", ...authHeaders(options) } },
    options,
  );
  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined;
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
