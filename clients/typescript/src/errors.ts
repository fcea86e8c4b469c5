import type { ClientErrorCode, ErrorCode } from "./types.js";

/** Codes whose failures may go away on a second try, when the server did not say. */
const RETRYABLE_BY_DEFAULT: ReadonlySet<string> = new Set([
  "llm_unavailable",
  "llm_rate_limited",
  "llm_timeout",
  "weather_unavailable",
  "timeout",
  "internal",
  "network",
  "stream_ended",
  "stream_expired",
]);

export interface TripstreamErrorInit {
  code: ErrorCode | ClientErrorCode;
  message: string;
  retryable?: boolean;
  /** HTTP status, when the failure was an HTTP error answer. */
  status?: number;
  /** The request field at fault (`error.field` of a 4xx body). */
  field?: string;
  /** The stream's id (`streamId` of its first event), when a stream was open. */
  streamId?: string;
  /** The `id:` of the last SSE message received, when a stream was open. */
  lastEventId?: string;
  cause?: unknown;
}

/**
 * Why a plan could not be had: an `error` event, a 4xx/5xx answer with the contract's JSON error body, or a
 * failure of the connection itself (`code` is then one of {@link ClientErrorCode}).
 */
export class TripstreamError extends Error {
  override readonly name = "TripstreamError";
  readonly code: ErrorCode | ClientErrorCode;
  /** Whether trying again may succeed (from the server's `retryable`, else by code). */
  readonly retryable: boolean;
  readonly status?: number;
  readonly field?: string;
  readonly streamId?: string;
  readonly lastEventId?: string;

  constructor(init: TripstreamErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.retryable = init.retryable ?? RETRYABLE_BY_DEFAULT.has(init.code);
    if (init.status !== undefined) this.status = init.status;
    if (init.field !== undefined) this.field = init.field;
    if (init.streamId !== undefined) this.streamId = init.streamId;
    if (init.lastEventId !== undefined) this.lastEventId = init.lastEventId;
  }
}

/** True for the rejection of an aborted call (`signal.reason`, normally a DOMException `AbortError`). */
export function isAbortError(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    ((error as { name?: unknown }).name === "AbortError" || (error as { name?: unknown }).name === "TimeoutError")
  );
}
