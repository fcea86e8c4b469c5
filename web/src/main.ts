// The page: a form, then the generation as it happens (progress, the draft's text, day cards) and the plan.
// Everything goes through @tripstream/client (clients/typescript), bundled in.

import {
  TripstreamError,
  calendarUrl,
  getCatalog,
  getSharedPlan,
  isAbortError,
  regenerateDay,
  sharePlan,
  streamPlan,
  type Budget,
  type Day,
  type DestinationInfo,
  type Plan,
  type PlanRequest,
  type Step,
  type StreamEvent,
} from "../../clients/typescript/src/index.js";
import { byId, h, svg } from "./dom.js";
import { dateRange, isoDate, money, tripDays } from "./format.js";
import { STRINGS, type Lang } from "./i18n.js";
import { ICONS } from "./icons.js";
import { activateMaps } from "./map.js";
import { budgetLabel, dayCard, summary, tips } from "./render.js";

const STEPS: Step[] = ["gather_context", "generate_draft", "validate_plan", "refine_plan", "finalize_plan"];
const BUDGETS: Budget[] = ["low", "medium", "high"];
const LANG_KEY = "tripstream.lang";

interface Run {
  controller: AbortController;
  request: PlanRequest;
}

const state = {
  lang: initialLanguage(),
  /** Whether places beyond the bundled list can be planned; unknown until the server says. */
  plansAnywhere: null as boolean | null,
  destinations: [] as DestinationInfo[],
  run: null as Run | null,
  /** What the results show, kept so a language switch can draw it again. */
  plan: null as Plan | null,
  /** The caller's saved copy of the plan shown (from the `complete` event), which Share links to. */
  planId: null as string | null,
  /** The link made for it, once Share was pressed. */
  shareUrl: null as string | null,
  sharing: false,
  shareProblem: false,
  copied: false,
  /** `/p/{shareId}`: the page shows that shared plan, read-only, without the form. */
  sharedId: sharedIdOf(location.pathname),
  request: null as PlanRequest | null,
  draftDays: new Map<number, Day>(),
  draftCurrency: "",
  error: null as unknown,
  step: null as Step | null,
  progress: 0,
  /** The try to resume a broken stream under way (1, 2, …), or null when connected. */
  reconnecting: null as number | null,
  /** A day being written again ("Regenerate this day"), or the last one's failure. */
  regen: null as Regen | null,
  /** What was typed in each day's instruction field, kept across redraws. */
  instructions: new Map<number, string>(),
};

interface Regen {
  day: number;
  controller: AbortController | null;
  /** The last status line: `{progress}% {message}`. */
  status: string;
  error: unknown;
}

const el = {
  form: byId<HTMLFormElement>("plan-form"),
  location: byId<HTMLInputElement>("location"),
  datalist: byId<HTMLDataListElement>("destinations"),
  locationHint: byId("location-hint"),
  startDate: byId<HTMLInputElement>("startDate"),
  endDate: byId<HTMLInputElement>("endDate"),
  travelers: byId<HTMLInputElement>("travelers"),
  submit: byId<HTMLButtonElement>("submit"),
  cancel: byId<HTMLButtonElement>("cancel"),
  empty: byId("empty"),
  progressPanel: byId("progress-panel"),
  tripHeading: byId("trip-heading"),
  progressBar: byId("progress-bar"),
  progressFill: byId("progress-fill"),
  progressPct: byId("progress-pct"),
  progressMessage: byId("progress-message"),
  reconnecting: byId("reconnecting"),
  reconnectingTitle: byId("reconnecting-title"),
  steps: byId<HTMLOListElement>("steps"),
  errorPanel: byId("error-panel"),
  errorTitle: byId("error-title"),
  errorHint: byId("error-hint"),
  errorMessage: byId("error-message"),
  retry: byId<HTMLButtonElement>("retry"),
  draftPanel: byId<HTMLDetailsElement>("draft-panel"),
  draft: byId<HTMLPreElement>("draft"),
  plan: byId("plan"),
  formPanel: byId("plan-form").closest("section") as HTMLElement,
  sharedHead: byId("shared-head"),
  sharedTitle: byId("shared-title"),
  sharedNote: byId("shared-note"),
};

function sharedIdOf(path: string): string | null {
  const match = /^\/p\/([^/]+)$/.exec(path);
  return match ? decodeURIComponent(match[1] ?? "") : null;
}

function t() {
  return STRINGS[state.lang];
}

function initialLanguage(): Lang {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  if (fromUrl === "ko" || fromUrl === "en") return fromUrl;
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "ko" || saved === "en") return saved;
  } catch {
    // Storage may be unavailable (private mode); the browser's language decides.
  }
  return (navigator.language || "ko").toLowerCase().startsWith("ko") ? "ko" : "en";
}

// ---------------------------------------------------------------------------------------------- language

function setLanguage(lang: Lang) {
  state.lang = lang;
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // Not remembered; still switched.
  }
  applyLanguage();
}

function applyLanguage() {
  const strings = t() as unknown as Record<string, unknown>;
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll<HTMLElement>("[data-i18n]")) {
    const value = strings[node.dataset.i18n ?? ""];
    if (typeof value === "string") node.textContent = value;
  }
  for (const node of document.querySelectorAll<HTMLInputElement>("[data-i18n-placeholder]")) {
    const value = strings[node.dataset.i18nPlaceholder ?? ""];
    if (typeof value === "string") node.placeholder = value;
  }
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
  }
  for (const item of el.steps.querySelectorAll<HTMLElement>("[data-step]")) {
    const label = item.querySelector(".step-label");
    if (label) label.textContent = t().steps[item.dataset.step as Step];
  }
  // A shared plan keeps the title the server gave it (its Open Graph title).
  if (!state.sharedId) document.title = `tripstream — ${t().formTitle}`;
  fillDestinations();
  updateBudgetCeilings();
  updateButtons();
  if (state.request) el.tripHeading.textContent = tripHeading(state.request);
  drawReconnecting();
  redrawResults();
}

// ------------------------------------------------------------------------------------------ destinations

function normalize(text: string): string {
  return text.normalize("NFC").toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
}

function findDestination(text: string): DestinationInfo | undefined {
  const key = normalize(text);
  if (!key) return undefined;
  return state.destinations.find((d) => [d.id, d.name.en, d.name.ko].some((name) => normalize(name) === key));
}

function offline(): boolean {
  return state.plansAnywhere === false;
}

function fillDestinations() {
  el.datalist.replaceChildren(
    ...state.destinations.map((d) => {
      const name = d.name[state.lang];
      const other = d.name[state.lang === "ko" ? "en" : "ko"];
      return h("option", { value: name }, `${other} · ${d.country}`);
    }),
  );
  // The typed name follows the language when it is one of ours.
  const current = findDestination(el.location.value);
  if (current) el.location.value = current.name[state.lang];
  if (state.plansAnywhere === null && !state.destinations.length) return;
  el.locationHint.textContent = offline() ? t().destinationHintOffline(state.destinations.length) : t().destinationHintFree;
}

function updateBudgetCeilings() {
  const destination = findDestination(el.location.value);
  for (const level of BUDGETS) {
    const label = document.querySelector(`[data-budget-label="${level}"]`);
    if (label) label.textContent = budgetLabel(level, state.lang);
    const ceiling = document.querySelector(`[data-budget-ceiling="${level}"]`);
    if (ceiling) {
      ceiling.textContent = destination
        ? `≤ ${money(destination.budget[level], destination.currency, state.lang)}`
        : "";
    }
  }
  const perDay = document.querySelector("[data-budget-per-day]");
  if (perDay) perDay.textContent = destination ? t().perDay : "";
}

async function loadServerInfo() {
  try {
    const catalog = await getCatalog();
    state.plansAnywhere = catalog.plansAnywhere;
    state.destinations = catalog.destinations;
  } catch {
    el.locationHint.textContent = t().loadFailed;
    el.locationHint.classList.add("problem");
    return;
  }
  el.locationHint.classList.remove("problem");
  fillDestinations();
  updateBudgetCeilings();
}

// -------------------------------------------------------------------------------------------------- form

function setFieldError(field: string | undefined, message: string | null) {
  for (const node of el.form.querySelectorAll<HTMLElement>("[aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const node of el.form.querySelectorAll<HTMLElement>(".field-error")) {
    node.textContent = "";
    node.hidden = true;
  }
  if (!field || !message) return;
  const input = el.form.querySelector<HTMLElement>(`[name="${field}"]`);
  input?.setAttribute("aria-invalid", "true");
  const slot = document.getElementById(`${field}-error`);
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
  }
}

function readForm(): PlanRequest | null {
  setFieldError(undefined, null);
  const location = el.location.value.trim();
  if (!location) {
    setFieldError("location", t().destinationRequired);
    el.location.focus();
    return null;
  }
  const known = findDestination(location);
  if (offline() && !known) {
    setFieldError("location", t().destinationUnknown(state.destinations.map((d) => d.name[state.lang]).join(", ")));
    el.location.focus();
    return null;
  }
  const budget = (el.form.elements.namedItem("budget") as RadioNodeList).value as Budget;
  const travelers = Number.parseInt(el.travelers.value, 10);
  return {
    location,
    startDate: el.startDate.value,
    endDate: el.endDate.value,
    budget,
    travelers: Number.isFinite(travelers) ? travelers : 1,
    language: state.lang,
  };
}

function tripHeading(request: PlanRequest): string {
  const name = findDestination(request.location)?.name[state.lang] ?? request.location;
  const dates = tripDays(request.startDate, request.endDate) ? ` · ${dateRange(request.startDate, request.endDate, state.lang)}` : "";
  return `${name}${dates}`;
}

function updateButtons() {
  const running = state.run !== null;
  el.submit.disabled = running;
  el.submit.textContent = running ? t().submitting : t().submit;
  el.cancel.hidden = !running;
  el.cancel.textContent = t().cancel;
  el.retry.textContent = t().retry;
}

// -------------------------------------------------------------------------------------------- generation

function setProgress(progress: number, message: string | null, step: Step | null) {
  state.progress = Math.max(state.progress, progress);
  if (step) state.step = step;
  el.progressFill.style.width = `${state.progress}%`;
  el.progressBar.setAttribute("aria-valuenow", String(state.progress));
  el.progressPct.textContent = `${state.progress}%`;
  if (message !== null) el.progressMessage.textContent = message;
  drawSteps();
}

function drawSteps() {
  const current = state.step ? STEPS.indexOf(state.step) : -1;
  const finished = state.progress >= 100;
  for (const item of el.steps.querySelectorAll<HTMLElement>("[data-step]")) {
    const index = STEPS.indexOf(item.dataset.step as Step);
    let status = "todo";
    if (finished || index < current) status = "done";
    else if (index === current) status = state.run ? "active" : "stopped";
    // Refining happens only when the check found problems.
    if (item.dataset.step === "refine_plan" && status === "done" && !item.dataset.seen) status = "skipped";
    if (index === current) item.dataset.seen = "1";
    item.dataset.status = status;
  }
}

/** Shows (attempt n) or hides (null) that the connection dropped and is being resumed. */
function setReconnecting(attempt: number | null) {
  state.reconnecting = attempt;
  drawReconnecting();
}

function drawReconnecting() {
  const attempt = state.reconnecting;
  el.reconnecting.hidden = attempt === null;
  if (attempt === null) {
    delete el.progressPanel.dataset.reconnecting;
    return;
  }
  el.progressPanel.dataset.reconnecting = String(attempt);
  el.reconnectingTitle.textContent = t().reconnecting(attempt);
}

function resetResults(request: PlanRequest) {
  state.regen?.controller?.abort();
  state.regen = null;
  state.instructions.clear();
  state.plan = null;
  state.planId = null;
  state.shareUrl = null;
  state.shareProblem = false;
  state.copied = false;
  state.error = null;
  state.request = request;
  state.draftDays.clear();
  state.draftCurrency = findDestination(request.location)?.currency ?? "";
  state.step = null;
  state.progress = 0;
  for (const item of el.steps.querySelectorAll<HTMLElement>("[data-step]")) delete item.dataset.seen;
  el.empty.hidden = true;
  el.errorPanel.hidden = true;
  el.progressPanel.hidden = false;
  el.progressPanel.dataset.state = "running";
  el.tripHeading.textContent = tripHeading(request);
  el.draft.textContent = "";
  el.draftPanel.hidden = true;
  el.draftPanel.open = true;
  el.plan.replaceChildren();
  activateMaps(el.plan);
  setReconnecting(null);
  setProgress(0, t().connecting, null);
}

function onEvent(event: StreamEvent) {
  switch (event.type) {
    case "status":
    case "progress":
      setProgress(event.progress, event.message, event.step);
      break;
    case "chunk":
      setProgress(event.progress, null, event.step);
      appendDraft(event.content);
      break;
    case "day":
      setProgress(event.progress, null, event.step);
      state.draftDays.set(event.day.day, event.day);
      redrawResults();
      break;
    case "complete":
      setProgress(100, event.message, event.step);
      state.planId = event.planId ?? null;
      break;
    case "error":
    case "done":
      break;
  }
}

function appendDraft(text: string) {
  el.draftPanel.hidden = false;
  const pre = el.draft;
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  pre.append(text);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

async function start(request: PlanRequest) {
  state.run?.controller.abort();
  const run: Run = { controller: new AbortController(), request };
  state.run = run;
  resetResults(request);
  updateButtons();
  if (window.matchMedia("(max-width: 899px)").matches) {
    el.progressPanel.scrollIntoView({ behavior: "smooth", block: "start" });
  }
  try {
    const plan = await streamPlan(request, {
      signal: run.controller.signal,
      onEvent: (event) => {
        if (state.run !== run) return;
        if (state.reconnecting !== null) setReconnecting(null);
        onEvent(event);
      },
      // The connection dropped: the client resumes the stream by itself; say so until it is back.
      onReconnect: ({ attempt }) => {
        if (state.run === run) setReconnecting(attempt);
      },
      onReconnected: () => {
        if (state.run === run) setReconnecting(null);
      },
    });
    if (state.run !== run) return;
    state.plan = plan;
    state.run = null;
    setReconnecting(null);
    el.progressPanel.dataset.state = "done";
    el.draftPanel.open = false;
    setProgress(100, null, "finalize_plan");
  } catch (error) {
    if (state.run !== run) return;
    state.run = null;
    setReconnecting(null);
    if (isAbortError(error)) {
      el.progressPanel.dataset.state = "cancelled";
      el.progressMessage.textContent = t().cancelled;
      drawSteps();
    } else {
      el.progressPanel.dataset.state = "failed";
      // Refused before anything started (a 4xx): there is no progress to show, only the error.
      el.progressPanel.hidden = state.progress === 0;
      drawSteps();
      state.error = error;
    }
  } finally {
    if (state.run === null) updateButtons();
  }
  redrawResults();
  if (state.error && window.matchMedia("(max-width: 899px)").matches) {
    el.errorPanel.scrollIntoView({ behavior: "smooth", block: "start" });
  }
}

function showError(error: unknown) {
  const strings = t();
  const known = error instanceof TripstreamError;
  const code = known ? error.code : "internal";
  const message = error instanceof Error ? error.message : String(error);
  el.errorTitle.textContent = strings.errorTitle[code] ?? strings.errorTitle.internal ?? "";
  const fixable = known && (error.code === "invalid_request" || error.code === "unknown_destination");
  el.errorHint.textContent = fixable ? strings.errorFixHint : strings.errorRetryHint;
  el.errorMessage.textContent = message;
  el.errorPanel.dataset.code = code;
  el.errorPanel.hidden = false;
  if (known && error.field) setFieldError(error.field, message);
}

function redrawResults() {
  const lang = state.lang;
  if (state.error) showError(state.error);
  const plan = state.plan;
  if (plan) {
    const destination = findDestination(state.request?.location ?? plan.location) ?? findDestination(plan.location);
    const ceiling =
      destination && destination.currency === plan.currency
        ? destination.budget[plan.budget] * plan.days.length * plan.travelers
        : null;
    const canRegenerate = state.planId !== null && !state.sharedId;
    const days = h(
      "div",
      { class: "days", id: "days" },
      ...plan.days.map((day) => dayCard(day, plan.currency, lang, false, canRegenerate ? regenBox(day.day) : null)),
    );
    const actions = [calendarLink(), state.planId && !state.sharedId ? shareButton() : null].filter((a) => a !== null);
    el.plan.replaceChildren(summary(plan, ceiling, lang, actions));
    const box = shareBox();
    if (box) el.plan.append(box);
    el.plan.append(days);
    const tipList = tips(plan, lang);
    if (tipList) el.plan.append(tipList);
  } else if (state.draftDays.size) {
    const days = [...state.draftDays.values()].sort((a, b) => a.day - b.day);
    el.plan.replaceChildren(
      h("div", { class: "days", id: "days" }, ...days.map((day) => dayCard(day, state.draftCurrency, lang, true))),
    );
  }
  activateMaps(el.plan);
}

// ---------------------------------------------------------------------------------------------- calendar

/**
 * "Add to calendar": the plan's `calendar.ics` (one event per activity, in the destination's time zone) for
 * a saved plan of this page's session or a share link; nothing for a plan that was not saved.
 */
function calendarLink(): HTMLAnchorElement | null {
  const of = state.sharedId ? { shareId: state.sharedId } : state.planId ? { planId: state.planId } : null;
  if (!of) return null;
  return h(
    "a",
    { class: "calendar-link", id: "calendar", href: calendarUrl(of), download: "", type: "text/calendar" },
    svg(ICONS.calendar, "icon"),
    t().addToCalendar,
  );
}

// ------------------------------------------------------------------------------------ regenerating a day

/** A day card's foot: an instruction field and "Regenerate this day", with the run's progress or failure. */
function regenBox(day: number): HTMLElement {
  const strings = t();
  const regen = state.regen;
  const busy = regen !== null && regen.controller !== null;
  const mine = regen?.day === day;
  const inputId = `regen-instruction-${day}`;
  const input = h("input", {
    id: inputId,
    type: "text",
    class: "regen-instruction",
    maxlength: "200",
    placeholder: strings.regeneratePlaceholder,
    value: state.instructions.get(day) ?? "",
    disabled: busy,
  }) as HTMLInputElement;
  input.addEventListener("input", () => state.instructions.set(day, input.value));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") void regenerate(day);
  });
  const button = h(
    "button",
    { type: "button", class: "secondary regen-button", "data-regenerate": day, disabled: busy },
    busy && mine ? strings.regenerating : strings.regenerate,
  );
  button.addEventListener("click", () => void regenerate(day));
  let status: string | null = null;
  if (mine && regen.controller) status = regen.status;
  else if (mine && regen.error) status = `${strings.regenerateFailed} ${regen.error instanceof Error ? regen.error.message : ""}`;
  return h(
    "div",
    { class: "regen", "aria-busy": String(busy && mine) },
    h("label", { for: inputId }, strings.regenerateLabel(day)),
    h("div", { class: "regen-row" }, input, button),
    h(
      "p",
      { class: mine && regen.error ? "regen-status problem" : "regen-status", id: `regen-status-${day}`, role: "status" },
      status ?? "",
    ),
  );
}

/** Writes day `day` of the saved plan shown again; the plan shown becomes the new version. */
async function regenerate(day: number) {
  const planId = state.planId;
  if (!planId || state.regen?.controller) return;
  const controller = new AbortController();
  const regen: Regen = { day, controller, status: t().regenerating, error: null };
  state.regen = regen;
  redrawResults();
  const instruction = (state.instructions.get(day) ?? "").trim();
  try {
    await regenerateDay(planId, day, {
      signal: controller.signal,
      ...(instruction ? { instruction } : {}),
      onEvent: (event) => {
        if (state.regen !== regen) return;
        if (event.type === "status" || event.type === "progress") {
          regen.status = `${event.progress}% ${event.message}`;
          const line = document.getElementById(`regen-status-${day}`);
          if (line) line.textContent = regen.status;
        } else if (event.type === "complete") {
          state.plan = event.plan;
          state.planId = event.planId ?? planId;
          // A new version: a link made for the old one still shows the latest, but say nothing stale.
          state.copied = false;
        }
      },
    });
    if (state.regen !== regen) return;
    state.regen = null;
    state.instructions.delete(day);
  } catch (error) {
    if (state.regen !== regen) return;
    regen.controller = null;
    regen.error = isAbortError(error) ? null : error;
    if (!regen.error) state.regen = null;
  }
  redrawResults();
  document.querySelector<HTMLButtonElement>(`[data-regenerate="${day}"]`)?.focus();
}

// ----------------------------------------------------------------------------------------------- sharing

/** "Share": makes a read-only link to the saved plan (once), shows it and copies it. */
function shareButton(): HTMLButtonElement {
  const label = state.sharing ? t().sharing : t().share;
  const button = h("button", { type: "button", class: "secondary share-button", id: "share", disabled: state.sharing }, label);
  button.addEventListener("click", () => void share());
  return button;
}

async function share() {
  const planId = state.planId;
  if (!planId || state.sharing) return;
  if (!state.shareUrl) {
    state.sharing = true;
    state.shareProblem = false;
    redrawResults();
    try {
      const link = await sharePlan(planId);
      if (state.planId !== planId) return;
      state.shareUrl = new URL(link.url, location.origin).href;
    } catch {
      state.shareProblem = true;
    } finally {
      state.sharing = false;
    }
  }
  if (state.shareUrl) {
    try {
      await navigator.clipboard.writeText(state.shareUrl);
      state.copied = true;
    } catch {
      // No clipboard (permissions, an insecure origin): the link is shown to copy by hand.
      state.copied = false;
    }
  }
  redrawResults();
  document.getElementById("share-url")?.focus();
}

/** The link made, to copy, and what happened; nothing before Share is pressed. */
function shareBox(): HTMLElement | null {
  if (!state.shareUrl && !state.shareProblem) return null;
  const strings = t();
  if (!state.shareUrl) return h("p", { class: "panel share-box problem", id: "share-box", role: "alert" }, strings.shareFailed);
  const input = h("input", { id: "share-url", type: "text", readonly: true, value: state.shareUrl, spellcheck: "false" });
  input.addEventListener("focus", () => input.select());
  return h(
    "div",
    { class: "panel share-box", id: "share-box" },
    h("label", { for: "share-url" }, strings.shareLink),
    input,
    h("p", { class: "share-status", id: "share-status", role: "status" }, state.copied ? strings.shareCopied : strings.shareReady),
  );
}

/** The page at `/p/{shareId}`: the shared plan, read-only; no form, nothing generated. */
async function showShared(shareId: string) {
  document.body.dataset.mode = "shared";
  el.formPanel.hidden = true;
  el.empty.hidden = true;
  el.sharedHead.hidden = false;
  try {
    const shared = await getSharedPlan(shareId);
    state.plan = shared.plan;
  } catch {
    el.sharedTitle.dataset.i18n = "sharedMissingTitle";
    el.sharedNote.dataset.i18n = "sharedMissing";
    el.sharedHead.dataset.missing = "true";
  }
  applyLanguage();
}

// ---------------------------------------------------------------------------------------------- wiring

function wire() {
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang as Lang));
  }
  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.run) return;
    const request = readForm();
    if (request) void start(request);
  });
  el.cancel.addEventListener("click", () => state.run?.controller.abort());
  el.retry.addEventListener("click", () => el.form.requestSubmit());
  el.location.addEventListener("input", () => updateBudgetCeilings());
  el.location.addEventListener("change", () => {
    // A destination we know reads in the page's language.
    const known = findDestination(el.location.value);
    if (known) el.location.value = known.name[state.lang];
    updateBudgetCeilings();
  });
  el.startDate.addEventListener("change", () => {
    // Keep the trip's length when the start moves.
    const length = tripDays(el.startDate.dataset.previous ?? "", el.endDate.value);
    if (length && el.startDate.value) {
      const start = new Date(`${el.startDate.value}T00:00:00`);
      el.endDate.value = isoDate(start, length - 1);
    }
    el.startDate.dataset.previous = el.startDate.value;
  });
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-step-travelers]")) {
    button.addEventListener("click", () => {
      const next = (Number.parseInt(el.travelers.value, 10) || 1) + Number(button.dataset.stepTravelers);
      el.travelers.value = String(Math.min(20, Math.max(1, next)));
    });
  }
}

function init() {
  const today = new Date();
  el.startDate.value = isoDate(today, 14);
  el.startDate.dataset.previous = el.startDate.value;
  el.endDate.value = isoDate(today, 16);
  el.location.value = "";
  for (const item of STEPS) {
    el.steps.append(
      h("li", { "data-step": item, "data-status": "todo" }, h("span", { class: "step-dot", "aria-hidden": "true" }), h("span", { class: "step-label" })),
    );
  }
  wire();
  applyLanguage();
  document.body.dataset.ready = "true";
  if (state.sharedId) {
    // The destinations are still loaded: they give the shared plan its budget ceiling.
    void Promise.all([loadServerInfo(), showShared(state.sharedId)]).then(() => {
      redrawResults();
      document.body.dataset.loaded = "true";
    });
    return;
  }
  void loadServerInfo().then(() => {
    if (!el.location.value) el.location.value = state.destinations.find((d) => d.id === "seoul")?.name[state.lang] ?? "";
    updateBudgetCeilings();
    document.body.dataset.loaded = "true";
  });
}

init();
