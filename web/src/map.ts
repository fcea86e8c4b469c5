// Each day's route as a map: numbered stops in visiting order joined by the legs. The sketch (sketch.ts) is
// always drawn; over it, when the server names a tile source (MAP_TILE_URL, written into the page's
// <meta name="tripstream-map-tiles">) and its tiles load, a Leaflet map of the same stops and legs. Tiles that
// cannot load leave the sketch, which is also what prints. Activities without coordinates are listed, not drawn.

import * as L from "leaflet";

import type { Activity, Day, LatLon } from "../../clients/typescript/src/index.js";
import { h } from "./dom.js";
import { STRINGS, type Lang } from "./i18n.js";
import { DEFAULT_SIZE, distance, metres, sketch, type Stop } from "./sketch.js";

interface TileSettings {
  /** A Leaflet URL template: `{z}`, `{x}`, `{y}`, maybe `{s}` and `{r}`. */
  url: string;
  /** Plain text; `[text](https://…)` is a link. */
  attribution: string;
}

/** The figures drawn and not yet given their tiles, with how to; and the tiled maps shown, to remove with them. */
const pending = new Map<HTMLElement, () => L.Map | null>();
const mounted = new Map<HTMLElement, L.Map>();
let observer: IntersectionObserver | null = null;
/** The sketches' frames in the page, each with how to draw its sketch again at a new size. */
const frames = new Map<HTMLElement, (size: { width: number; height: number }) => void>();
let resizer: ResizeObserver | null = null;
let settings: TileSettings | null | undefined;

function tileSettings(): TileSettings | null {
  if (settings !== undefined) return settings;
  settings = null;
  const content = document.querySelector<HTMLMetaElement>('meta[name="tripstream-map-tiles"]')?.content ?? "";
  try {
    const value: unknown = JSON.parse(content);
    if (value && typeof value === "object" && "url" in value && typeof value.url === "string" && value.url) {
      const attribution = "attribution" in value && typeof value.attribution === "string" ? value.attribution : "";
      settings = { url: value.url, attribution };
    }
  } catch {
    // Not served by tripstream (the placeholder is still there): no tiles, the sketch alone.
  }
  return settings;
}

/** Where an activity is, when it says so with coordinates that exist. */
export function placed(activity: Activity): LatLon | null {
  const place = activity.location;
  const valid = place && Number.isFinite(place.lat) && Number.isFinite(place.lon) && Math.abs(place.lat) <= 90 && Math.abs(place.lon) <= 180;
  return valid ? place : null;
}

/** The stops of a day that have coordinates, numbered in visiting order, and the names of those that do not. */
function stopsOf(day: Day): { stops: Stop[]; unplaced: string[] } {
  const stops: Stop[] = [];
  const unplaced: string[] = [];
  day.activities.forEach((activity, i) => {
    const place = placed(activity);
    if (place) stops.push({ n: i + 1, name: activity.name, lat: place.lat, lon: place.lon, category: activity.category });
    else unplaced.push(`${i + 1} ${activity.name}`);
  });
  return { stops, unplaced };
}

/** The day's map, or null when none of its activities has coordinates. */
export function dayMap(day: Day, lang: Lang): HTMLElement | null {
  const t = STRINGS[lang];
  const { stops, unplaced } = stopsOf(day);
  if (!stops.length) return null;
  const length = stops.slice(1).reduce((sum, stop, i) => sum + metres(stops[i] as Stop, stop), 0);
  const frame = h("div", { class: "map-frame" }, sketch(day.day, stops, lang));
  let drawn = DEFAULT_SIZE.width;
  frames.set(frame, (size) => {
    if (Math.abs(size.width - drawn) < 2 || size.width < 1 || size.height < 1) return;
    drawn = size.width;
    frame.querySelector("svg.sketch")?.replaceWith(sketch(day.day, stops, lang, size));
  });
  const figure = h(
    "figure",
    { class: "day-map", "data-day": day.day, "data-tiles": "off" },
    frame,
    h(
      "figcaption",
      { class: "map-caption" },
      h("span", { class: "route-summary" }, t.routeSummary(stops.length, distance(length, lang))),
      unplaced.length ? h("span", { class: "map-unplaced" }, t.unplaced(unplaced.join(", "))) : null,
    ),
  );
  const tiles = tileSettings();
  if (tiles) {
    figure.dataset.tiles = "pending";
    pending.set(figure, () => tiledMap(figure, frame, stops, tiles, t.mapRegion(day.day)));
  }
  return figure;
}

/**
 * Call after putting maps into the page: removes the tiled maps of figures no longer in it, and gives the new
 * figures their tiles once they come near the screen (a long trip does not fetch every day's tiles at once).
 */
export function activateMaps(root: ParentNode): void {
  for (const [figure, map] of mounted) {
    if (!figure.isConnected) {
      map.remove();
      mounted.delete(figure);
    }
  }
  for (const figure of pending.keys()) {
    if (!figure.isConnected) {
      observer?.unobserve(figure);
      pending.delete(figure);
    }
  }
  // Each sketch is drawn in the pixels of its frame, and again when the frame changes size.
  resizer ??= new ResizeObserver((entries) => {
    for (const entry of entries) frames.get(entry.target as HTMLElement)?.(entry.contentRect);
  });
  for (const frame of frames.keys()) {
    if (frame.isConnected) resizer.observe(frame);
    else {
      resizer.unobserve(frame);
      frames.delete(frame);
    }
  }
  observer ??= new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        const figure = entry.target as HTMLElement;
        observer?.unobserve(figure);
        const mount = pending.get(figure);
        pending.delete(figure);
        const map = figure.isConnected && mount ? mount() : null;
        if (map) mounted.set(figure, map);
      }
    },
    { rootMargin: "300px 0px" },
  );
  for (const figure of root.querySelectorAll<HTMLElement>("figure.day-map")) {
    if (pending.has(figure)) observer.observe(figure);
  }
}

function tiledMap(figure: HTMLElement, frame: HTMLElement, stops: Stop[], tiles: TileSettings, label: string): L.Map | null {
  const host = h("div", { class: "tiles", role: "region", "aria-label": label });
  frame.append(host);
  figure.dataset.tiles = "loading";
  const map = L.map(host, { scrollWheelZoom: false, dragging: !L.Browser.mobile, zoomSnap: 0.5 });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  const layer = L.tileLayer(tiles.url, {
    maxZoom: 19,
    attribution: attributionHtml(tiles.attribution),
    // The page sends no referrer; tile servers (OpenStreetMap's among them) ask to know the site, not the page.
    referrerPolicy: "strict-origin-when-cross-origin",
  });
  let loaded = 0;
  layer.on("tileload", () => {
    loaded += 1;
    figure.dataset.tiles = "shown";
  });
  // Every tile of the first view tried and none loaded: offline, blocked or misconfigured. The sketch stays.
  layer.on("load", () => {
    if (loaded > 0 || figure.dataset.tiles !== "loading") return;
    figure.dataset.tiles = "failed";
    queueMicrotask(() => {
      map.remove();
      host.remove();
      mounted.delete(figure);
    });
  });
  layer.addTo(map);

  const points = stops.map((s) => L.latLng(s.lat, s.lon));
  for (let i = 1; i < stops.length; i++) {
    const gap = (stops[i] as Stop).n - (stops[i - 1] as Stop).n > 1;
    L.polyline([points[i - 1] as L.LatLng, points[i] as L.LatLng], {
      className: gap ? "map-leg gap" : "map-leg",
      color: "#0b5d57",
      weight: 3,
      opacity: 0.85,
      dashArray: gap ? "6 6" : undefined,
      interactive: false,
    }).addTo(map);
  }
  stops.forEach((stop, i) => {
    const icon = L.divIcon({ className: `map-stop cat-${stop.category}`, html: String(stop.n), iconSize: [26, 26] });
    L.marker(points[i] as L.LatLng, { icon, keyboard: false, interactive: false }).addTo(map);
  });
  if (points.length === 1) map.setView(points[0] as L.LatLng, 15);
  else map.fitBounds(L.latLngBounds(points), { padding: [28, 28], maxZoom: 16 });
  return map;
}

/** The credit as Leaflet's HTML: text escaped, `[text](http…)` a link. */
function attributionHtml(text: string): string {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  let html = "";
  let last = 0;
  for (const match of text.matchAll(/\[([^\]]+)\]\((https?:\/\/[^\s()]+)\)/g)) {
    const index = match.index ?? 0;
    html += `${escape(text.slice(last, index))}<a href="${escape(match[2] ?? "")}" rel="noopener noreferrer" target="_blank">${escape(match[1] ?? "")}</a>`;
    last = index + match[0].length;
  }
  return html + escape(text.slice(last));
}
