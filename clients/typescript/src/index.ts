export {
  streamPlan,
  generatePlan,
  listDestinations,
  getHealth,
  errorFromResponse,
  STREAM_PATH,
  GENERATE_PATH,
  DESTINATIONS_PATH,
  HEALTH_PATH,
} from "./client.js";
export type { ClientOptions, StreamPlanOptions, EventMeta } from "./client.js";
export { TripstreamError, isAbortError } from "./errors.js";
export type { TripstreamErrorInit } from "./errors.js";
export type * from "./types.js";
