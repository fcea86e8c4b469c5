// Money, dates and durations for people, in the page's language.

import { LOCALE, STRINGS, type Lang } from "./i18n.js";

const moneyFormats = new Map<string, Intl.NumberFormat>();

/** `64000, "KRW"` → `₩64,000`; `12000, "JPY"` → `¥12,000`; `85, "EUR"` → `€85`. Whole units, no decimals. */
export function money(amount: number, currency: string, lang: Lang): string {
  const key = `${lang}:${currency}`;
  let format = moneyFormats.get(key);
  if (!format) {
    try {
      format = new Intl.NumberFormat(LOCALE[lang], {
        style: "currency",
        currency,
        currencyDisplay: "narrowSymbol",
        minimumFractionDigits: 0,
        maximumFractionDigits: 0,
      });
    } catch {
      // No currency yet (a draft day of a place we have no data for) or an unknown code: the number (and code).
      const plain = new Intl.NumberFormat(LOCALE[lang], { maximumFractionDigits: 0 });
      format = { format: (n: number) => (currency ? `${plain.format(n)} ${currency}` : plain.format(n)) } as Intl.NumberFormat;
    }
    moneyFormats.set(key, format);
  }
  return format.format(amount);
}

/** A cost: the amount, or "Free". */
export function cost(amount: number, currency: string, lang: Lang): string {
  return amount === 0 ? STRINGS[lang].free : money(amount, currency, lang);
}

function utcDate(iso: string): Date {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1));
}

/** `2025-11-10` → `11월 10일 (월)` / `Mon 10 Nov`. */
export function dayDate(iso: string, lang: Lang): string {
  return new Intl.DateTimeFormat(LOCALE[lang], { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" }).format(
    utcDate(iso),
  );
}

/** `2025-11-10`, `2025-11-12` → `2025년 11월 10일 ~ 12일` / `10–12 Nov 2025`. */
export function dateRange(start: string, end: string, lang: Lang): string {
  const format = new Intl.DateTimeFormat(LOCALE[lang], { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
  return format.formatRange(utcDate(start), utcDate(end));
}

/** Inclusive number of days from `start` to `end` (0 when either is missing or end is before start). */
export function tripDays(start: string, end: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(start) || !/^\d{4}-\d{2}-\d{2}$/.test(end)) return 0;
  const days = Math.round((utcDate(end).getTime() - utcDate(start).getTime()) / 86_400_000) + 1;
  return days > 0 ? days : 0;
}

/** `120` → `2시간` / `2 h`; `90` → `1시간 30분` / `1 h 30 min`. */
export function duration(minutes: number, lang: Lang): string {
  return STRINGS[lang].hours(Math.floor(minutes / 60), minutes % 60);
}

/** `3.6` → `4`: temperatures to the degree. */
export function degrees(celsius: number): string {
  return `${Math.round(celsius)}`;
}

/** `YYYY-MM-DD` of `date` plus `days`, in local time (for the form's defaults). */
export function isoDate(date: Date, days = 0): string {
  const d = new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
