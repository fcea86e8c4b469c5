// The wire contract of tripstream (API.md), as TypeScript types.
//
// Fields marked "compat" are the original service's; "ext" fields are tripstream's additions. Clients that
// only read compat fields keep working.

/** Budget level of a trip. */
export type Budget = "low" | "medium" | "high";

/** Language of the plan and of the stream's messages. */
export type Language = "ko" | "en";

/** The body of `POST /api/v1/plans/generate` and `POST /api/v1/plans/generate/stream`. */
export interface PlanRequest {
  /** City or region, 1–100 characters (compat). */
  location: string;
  /** `YYYY-MM-DD` (compat). */
  startDate: string;
  /** `YYYY-MM-DD`, not before `startDate` (compat). */
  endDate: string;
  /** (compat) */
  budget: Budget;
  /** Default `ko`; the server uses `Accept-Language` when absent (ext). */
  language?: Language;
  /** 1–20, default 1 (ext). */
  travelers?: number;
  /** Up to 10 hints such as `food`, `history` (ext). */
  interests?: string[];
}

export type Category =
  | "sightseeing"
  | "food"
  | "cafe"
  | "shopping"
  | "culture"
  | "nature"
  | "activity"
  | "nightlife"
  | "transport"
  | "rest";

export interface LatLon {
  lat: number;
  lon: number;
}

export interface Activity {
  /** `HH:MM`, local time. */
  time: string;
  durationMinutes: number;
  name: string;
  description: string;
  category: Category;
  /** Neighbourhood; may be empty. */
  area: string;
  /** Whole units of the plan's `currency`, for all travelers. */
  cost: number;
  indoor: boolean;
  location?: LatLon;
}

export interface DayWeather {
  summary: string;
  tempMinC: number;
  tempMaxC: number;
  /** 0–100. */
  precipitationChance: number;
  /** `forecast`: a real forecast for that date; `climatology`: monthly normals. */
  source: "forecast" | "climatology";
}

export interface Day {
  /** 1-based. */
  day: number;
  /** `YYYY-MM-DD`. */
  date: string;
  theme: string;
  weather: DayWeather;
  activities: Activity[];
  /** Sum of the day's activity costs. */
  dailyCost: number;
}

export interface PlanDestination {
  name: string;
  country: string;
  lat: number;
  lon: number;
  timezone: string;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface PlanMetadata {
  provider: string;
  model: string;
  generatedAt: string;
  iterations: number;
  promptVersion: string;
  weatherSource: string;
  durationMs: number;
  cached: boolean;
  usage: Usage;
  [key: string]: unknown;
}

/** The final plan: `plan` of the `complete` event and the body of `/plans/generate`. */
export interface Plan {
  id: string;
  title: string;
  location: string;
  destination: PlanDestination;
  startDate: string;
  endDate: string;
  budget: Budget;
  travelers: number;
  /** ISO 4217, e.g. `KRW`, `JPY`, `EUR`, `USD`. */
  currency: string;
  language: Language;
  days: Day[];
  totalCost: number;
  tips: string[];
  /** What the plan knowingly does not satisfy, in the request's language. Empty when valid. */
  warnings: string[];
  metadata: PlanMetadata;
}

/** The workflow's steps, as named on the wire. */
export type Step = "gather_context" | "generate_draft" | "validate_plan" | "refine_plan" | "finalize_plan";

/** Stable error codes of the contract (`error` of an error event, `error.code` of an HTTP error body). */
export type ErrorCode =
  | "invalid_request"
  | "unknown_destination"
  | "llm_unavailable"
  | "llm_rate_limited"
  | "llm_bad_output"
  | "llm_timeout"
  | "weather_unavailable"
  | "timeout"
  | "internal"
  | "cancelled"
  /** HTTP only: no such endpoint or stream (or not the caller's). */
  | "not_found"
  /** HTTP only: a store the answer needs cannot be reached now; retry shortly. */
  | "unavailable"
  /** HTTP only: no API key where one is needed, or one that is not valid. */
  | "unauthorized"
  /** HTTP only: a key without the scope this needs. */
  | "forbidden"
  /** HTTP only: an `Idempotency-Key` this caller used before with another request. */
  | "idempotency_key_reused"
  /** HTTP only: over the caller's request rate; retry after `Retry-After`. */
  | "rate_limited"
  /** HTTP only: the key's daily LLM token budget is spent. */
  | "quota_exceeded"
  /** HTTP only: this replica is at capacity; retry after `Retry-After`. */
  | "overloaded"
  /** HTTP only: no saved plan or version with this id, or not the caller's (the two are not told apart). */
  | "plan_not_found"
  /** HTTP only: no share link with this id, or it was revoked. */
  | "share_not_found";

/** Codes this client adds for failures that never reached the contract's error shape. */
export type ClientErrorCode =
  /** The request could not be sent or the connection broke mid-stream. */
  | "network"
  /** An HTTP error without the contract's JSON error body. */
  | "http_error"
  /** A response that is not what the endpoint promises (wrong content type, unparsable data). */
  | "bad_response"
  /** The stream closed without a `complete` or `error` event, and could not be resumed. */
  | "stream_ended"
  /** The stream broke and the server no longer knows it (`404` on resume: expired, or another replica). */
  | "stream_expired";

/** Ext fields that may appear on any event. */
interface EventExt {
  /** On the first event of a response: the caller's own id for the stream. */
  streamId?: string;
  /**
   * On the first event of the response that gave the caller the stream: the token that reaches it again
   * (`X-Resume-Token` on a resume or cancel, or `?token=` for EventSource). Keep it like a password.
   */
  resumeToken?: string;
}

/** A step started. */
export interface StatusEvent extends EventExt {
  type: "status";
  message: string;
  progress: number;
  step: Step;
  /** (ext) On refine events: the refine iteration, 1-based. */
  iteration?: number;
}

/** A step reached its milestone. */
export interface ProgressEvent extends EventExt {
  type: "progress";
  message: string;
  progress: number;
  step: Step;
  /** (ext) On refine events: the refine iteration, 1-based. */
  iteration?: number;
}

/** A piece of the draft as it is written: text for people, not JSON. */
export interface ChunkEvent extends EventExt {
  type: "chunk";
  content: string;
  progress: number;
  step: Step;
}

/** (ext) One day of the draft is complete; lets a UI render cards as they arrive. */
export interface DayEvent extends EventExt {
  type: "day";
  day: Day;
  progress: number;
  step: Step;
}

/** The final plan. */
export interface CompleteEvent extends EventExt {
  type: "complete";
  message: string;
  progress: 100;
  step: "finalize_plan";
  plan: Plan;
  /** (ext) The caller's saved copy of the plan (`plan_…`), saved before this event was sent: `getPlan(planId)`. */
  planId?: string;
}

/** The generation failed; `message` is for people, `error` is a stable code. */
export interface ErrorEvent extends EventExt {
  type: "error";
  message: string;
  error: ErrorCode;
  /** (ext) Whether trying again may succeed. */
  retryable?: boolean;
  /** (ext) Tokens spent before the failure, when an LLM was called. */
  usage?: Usage;
  /** (ext) On `cancelled`: the days drafted before the cancellation. */
  partialDays?: Day[];
}

/** The last message of every stream. */
export interface DoneEvent extends EventExt {
  type: "done";
}

/** Every event of `POST /api/v1/plans/generate/stream`. Unknown event types are skipped by the client. */
export type StreamEvent =
  | StatusEvent
  | ProgressEvent
  | ChunkEvent
  | DayEvent
  | CompleteEvent
  | ErrorEvent
  | DoneEvent;

export type StreamEventType = StreamEvent["type"];

/** The body of a 4xx/5xx answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string | null };
}

/** One entry of `GET /api/v1/destinations`. */
export interface DestinationInfo {
  id: string;
  name: { en: string; ko: string };
  country: string;
  /** ISO 4217. */
  currency: string;
  timezone: string;
  lat: number;
  lon: number;
  /** Budget ceilings per day per traveler, in `currency`. */
  budget: Record<Budget, number>;
}

/** `GET /health`: the status for everyone, the details for admins only. */
export interface Health {
  status: string;
  version?: string;
  uptimeSecs?: number;
  llm?: {
    provider: string;
    model: string;
    promptVersion: string;
    chain: string[];
  };
  weather?: string;
  destinations?: number;
  maxTripDays?: number;
  [key: string]: unknown;
}

/** `GET /api/v1/destinations`. */
export interface Catalog {
  destinations: DestinationInfo[];
  /** Whether places beyond the list can be planned (an LLM provider is configured). */
  plansAnywhere: boolean;
}

/** The answer of `POST /api/v1/plans/generate`: the plan, and (ext) the id of the caller's saved copy. */
export type GeneratedPlan = Plan & { planId?: string };

/** A saved plan as `GET /api/v1/plans` lists it. */
export interface PlanSummary {
  planId: string;
  /** The latest version's title. */
  title: string;
  location: string;
  startDate: string;
  endDate: string;
  latestVersion: number;
  createdAtMs: number;
  /** When the latest version was saved; retention (`PLAN_RETENTION_DAYS`) counts from here. */
  updatedAtMs: number;
}

/** One version of a saved plan (`GET /api/v1/plans/{planId}` and `…/versions/{n}`). */
export interface SavedPlan extends PlanSummary {
  version: number;
  versionCreatedAtMs: number;
  /** The request the plan was generated for. */
  request: Partial<PlanRequest>;
  plan: Plan;
}

/** A read-only link to a saved plan (`POST /api/v1/plans/{planId}/share`). */
export interface Share {
  shareId: string;
  planId: string;
  /** The page that shows the plan: `/p/{shareId}`, on the server's origin. */
  url: string;
  createdAtMs: number;
}

/** A shared plan as anyone with the link reads it (`GET /api/v1/shares/{shareId}`). */
export interface SharedPlan {
  shareId: string;
  title: string;
  version: number;
  plan: Plan;
}
