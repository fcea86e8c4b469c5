export {
  streamPlan,
  regenerateDay,
  regeneratePath,
  generatePlan,
  listDestinations,
  getCatalog,
  getHealth,
  getPlan,
  listPlans,
  sharePlan,
  getSharedPlan,
  revokeShare,
  calendarUrl,
  getCalendar,
  errorFromResponse,
  resumePath,
  DEFAULT_MAX_RECONNECTS,
  DEFAULT_RECONNECT_DELAY_MS,
  DEFAULT_MAX_RECONNECT_DELAY_MS,
  STREAM_PATH,
  GENERATE_PATH,
  DESTINATIONS_PATH,
  HEALTH_PATH,
  PLANS_PATH,
  SHARES_PATH,
} from "./client.js";
export type {
  CalendarOf,
  ClientOptions,
  StreamPlanOptions,
  RegenerateDayOptions,
  EventMeta,
  ReconnectInfo,
  ReconnectedInfo,
} from "./client.js";
export { TripstreamError, isAbortError } from "./errors.js";
export type { TripstreamErrorInit } from "./errors.js";
export type * from "./types.js";
