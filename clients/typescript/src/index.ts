export {
  streamPlan,
  generatePlan,
  listDestinations,
  getCatalog,
  getHealth,
  errorFromResponse,
  resumePath,
  DEFAULT_MAX_RECONNECTS,
  DEFAULT_RECONNECT_DELAY_MS,
  DEFAULT_MAX_RECONNECT_DELAY_MS,
  STREAM_PATH,
  GENERATE_PATH,
  DESTINATIONS_PATH,
  HEALTH_PATH,
} from "./client.js";
export type { ClientOptions, StreamPlanOptions, EventMeta, ReconnectInfo, ReconnectedInfo } from "./client.js";
export { TripstreamError, isAbortError } from "./errors.js";
export type { TripstreamErrorInit } from "./errors.js";
export type * from "./types.js";
