// The plan as people read it: a summary with the total against the budget, then one card per day.

import type { Activity, Budget, Day, Plan } from "../../clients/typescript/src/index.js";
import { h, svg } from "./dom.js";
import { cost, dateRange, dayDate, degrees, duration, money } from "./format.js";
import { STRINGS, type Lang } from "./i18n.js";
import { ICONS, weatherIcon } from "./icons.js";
import { dayMap, placed } from "./map.js";

export function budgetLabel(level: Budget, lang: Lang): string {
  const t = STRINGS[lang];
  return { low: t.budgetLow, medium: t.budgetMedium, high: t.budgetHigh }[level];
}

/** One activity; `n` is its place in the day (the number on the map). */
function activityItem(activity: Activity, n: number, currency: string, lang: Lang): HTMLLIElement {
  const t = STRINGS[lang];
  const category = t.categories[activity.category] ?? activity.category;
  return h(
    "li",
    { class: `activity cat-${activity.category}`, "data-stop": n },
    h(
      "div",
      { class: "when" },
      h("time", { class: "time" }, activity.time),
      h("span", { class: "dur" }, duration(activity.durationMinutes, lang)),
    ),
    h("span", { class: placed(activity) ? "dot" : "dot unplaced", "aria-hidden": "true" }, n),
    h(
      "div",
      { class: "what" },
      h(
        "div",
        { class: "what-head" },
        h("h4", { class: "name" }, activity.name),
        h("span", { class: activity.cost === 0 ? "cost free" : "cost" }, cost(activity.cost, currency, lang)),
      ),
      activity.description ? h("p", { class: "desc" }, activity.description) : null,
      h(
        "div",
        { class: "tags" },
        h("span", { class: "tag cat" }, category),
        activity.area ? h("span", { class: "tag area" }, svg(ICONS.pin, "icon tiny"), activity.area) : null,
        h(
          "span",
          { class: activity.indoor ? "tag io indoor" : "tag io outdoor" },
          svg(activity.indoor ? ICONS.roof : ICONS.tree, "icon tiny"),
          activity.indoor ? t.indoor : t.outdoor,
        ),
      ),
    ),
  );
}

/**
 * One day's card. `draft` marks a card from a `day` event, before the final plan replaces it; `extra` goes at
 * its foot (the page's "Regenerate this day").
 */
export function dayCard(day: Day, currency: string, lang: Lang, draft = false, extra: HTMLElement | null = null): HTMLElement {
  const t = STRINGS[lang];
  const weather = day.weather;
  const forecast = weather.source === "forecast";
  return h(
    "article",
    { class: draft ? "day-card draft" : "day-card", "data-day": day.day },
    h(
      "header",
      { class: "day-head" },
      h(
        "div",
        { class: "day-title" },
        h("span", { class: "day-num" }, t.day(day.day)),
        h("span", { class: "day-date" }, dayDate(day.date, lang)),
        draft ? h("span", { class: "badge draft-badge" }, t.draftBadge) : null,
      ),
      h("h3", { class: "day-theme" }, day.theme),
    ),
    h(
      "div",
      { class: "weather" },
      h("span", { class: "wx-icon" }, svg(weatherIcon(weather), "icon wx")),
      h("span", { class: "wx-summary" }, weather.summary),
      h(
        "span",
        { class: "wx-temp", title: "°C" },
        h("span", { class: "lo" }, `${degrees(weather.tempMinC)}°`),
        " / ",
        h("span", { class: "hi" }, `${degrees(weather.tempMaxC)}°C`),
      ),
      h(
        "span",
        { class: weather.precipitationChance >= 60 ? "wx-rain wet" : "wx-rain" },
        svg(ICONS.drop, "icon tiny"),
        `${t.rain} ${weather.precipitationChance}%`,
      ),
      h("span", { class: forecast ? "badge wx-source forecast" : "badge wx-source normals" }, forecast ? t.forecast : t.climatology),
    ),
    dayMap(day, lang),
    h("ol", { class: "timeline" }, ...day.activities.map((a, i) => activityItem(a, i + 1, currency, lang))),
    h(
      "footer",
      { class: "day-foot" },
      h("span", null, t.dayCost),
      h("strong", { class: "day-cost" }, money(day.dailyCost, currency, lang)),
    ),
    extra,
  );
}

/** The plan's head: title, dates, the total against the budget ceiling (when known), warnings. */
/** The plan's head: title, dates, total against the budget; `actions` are buttons beside Print (Share). */
export function summary(plan: Plan, ceiling: number | null, lang: Lang, actions: HTMLElement[] = []): HTMLElement {
  const t = STRINGS[lang];
  const days = plan.days.length;
  const share = ceiling ? plan.totalCost / ceiling : null;
  const over = share !== null && share > 1;
  const meta = plan.metadata;

  const meter = h("div", { class: "meter", "aria-hidden": "true" }, h("div", { class: over ? "meter-fill over" : "meter-fill" }));
  if (share !== null) (meter.firstElementChild as HTMLElement).style.width = `${Math.min(100, Math.round(share * 100))}%`;

  return h(
    "article",
    { class: "panel summary", id: "summary" },
    h(
      "div",
      { class: "summary-head" },
      h(
        "div",
        null,
        h("h2", { class: "plan-title" }, plan.title),
        h(
          "p",
          { class: "plan-meta" },
          `${dateRange(plan.startDate, plan.endDate, lang)} · ${t.nights(days)} · ${t.travelersCount(plan.travelers)}`,
        ),
      ),
      h(
        "div",
        { class: "summary-side" },
        h("span", { class: "badge budget-badge" }, budgetLabel(plan.budget, lang)),
        h("div", { class: "summary-actions" }, printButton(lang), ...actions),
      ),
    ),
    h(
      "div",
      { class: "total-box" },
      h(
        "div",
        { class: "total" },
        h("span", { class: "label" }, t.total),
        h("strong", { class: "total-amount", id: "total-amount" }, money(plan.totalCost, plan.currency, lang)),
      ),
      ceiling !== null && share !== null
        ? h(
            "div",
            { class: "budget" },
            meter,
            h(
              "p",
              { class: "budget-line" },
              h("span", null, `${t.ofBudget(money(ceiling, plan.currency, lang))} · ${Math.round(share * 100)}%`),
              h("span", { class: over ? "verdict over" : "verdict ok" }, svg(over ? ICONS.alert : ICONS.check, "icon tiny"), over ? t.overBudget : t.withinBudget),
            ),
            h("p", { class: "budget-note" }, t.budgetNote(budgetLabel(plan.budget, lang), days, plan.travelers)),
          )
        : null,
    ),
    plan.warnings.length
      ? h(
          "div",
          { class: "warnings", role: "note" },
          h("h3", null, svg(ICONS.warn, "icon"), t.warnings),
          h("ul", null, ...plan.warnings.map((w) => h("li", null, w))),
        )
      : null,
    h(
      "p",
      { class: "generated" },
      t.generatedBy(
        t.providers[meta.provider] ?? (meta.model ? `${meta.provider} · ${meta.model}` : meta.provider),
        meta.weatherSource
          .split("+")
          .map((source) => t.weatherSources[source] ?? source)
          .join(" + "),
        t.took(meta.durationMs),
      ),
    ),
  );
}

export function tips(plan: Plan, lang: Lang): HTMLElement | null {
  if (!plan.tips.length) return null;
  const t = STRINGS[lang];
  return h(
    "section",
    { class: "panel tips" },
    h("h3", null, svg(ICONS.bulb, "icon"), t.tips),
    h("ul", null, ...plan.tips.map((tip) => h("li", null, tip))),
  );
}

/** "Print / Save as PDF": the print stylesheet lays the plan out as A4 pages, one day per page. */
function printButton(lang: Lang): HTMLButtonElement {
  const button = h("button", { type: "button", class: "secondary print-button", id: "print" }, svg(ICONS.print, "icon"), STRINGS[lang].print);
  button.addEventListener("click", () => window.print());
  return button;
}
