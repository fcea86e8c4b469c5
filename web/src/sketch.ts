// A day's route drawn from its coordinates alone, as SVG: the legs in visiting order, the numbered stops over
// them and a scale bar. It needs no tiles and no network, so it is there offline, behind a strict firewall and
// on paper; map.ts lays a tiled map over it when tiles load.

import type { Category } from "../../clients/typescript/src/index.js";
import { LOCALE, STRINGS, type Lang } from "./i18n.js";

/** An activity with coordinates; `n` is its place in the day's visiting order (1-based, all activities). */
export interface Stop {
  n: number;
  name: string;
  lat: number;
  lon: number;
  category: Category;
}

const NS = "http://www.w3.org/2000/svg";
/** The size drawn at before the page is laid out; map.ts draws again at the frame's size in pixels. */
export const DEFAULT_SIZE = { width: 640, height: 300 };
const PAD = 30;
const EARTH_RADIUS_M = 6_371_008.8;
/** The sketch shows at least this much ground across, so two stops next door are not drawn a page apart. */
const MIN_SPAN_M = 1_200;
const SCALE_STEPS_M = [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000];
const RAD = Math.PI / 180;

let nextId = 0;

function node<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  ...children: (Node | string)[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** Metres between two points along the Earth's surface (haversine). */
export function metres(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const dLat = (b.lat - a.lat) * RAD;
  const dLon = (b.lon - a.lon) * RAD;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * RAD) * Math.cos(b.lat * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** `850 m`, `4.3 km`, in the page's language. */
export function distance(m: number, lang: Lang): string {
  const km = m >= 1000;
  return new Intl.NumberFormat(LOCALE[lang], {
    style: "unit",
    unit: km ? "kilometer" : "meter",
    maximumFractionDigits: km && m < 10_000 ? 1 : 0,
  }).format(km ? m / 1000 : Math.round(m));
}

/** Web Mercator, in radians: what tiled maps use, so the sketch has the shape the map would. */
function mercator(stop: Stop): [number, number] {
  const lat = Math.max(-85, Math.min(85, stop.lat)) * RAD;
  return [stop.lon * RAD, Math.log(Math.tan(Math.PI / 4 + lat / 2))];
}

/**
 * The sketch of `stops` (in visiting order), `size` in the pixels it will be shown at (so markers and text keep
 * their size on a phone), labelled for screen readers with the day's route.
 */
export function sketch(day: number, stops: Stop[], lang: Lang, size = DEFAULT_SIZE): SVGSVGElement {
  const width = Math.max(160, Math.round(size.width));
  const height = Math.max(120, Math.round(size.height));
  const t = STRINGS[lang];
  const points = stops.map(mercator);
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const meanLat = stops.reduce((sum, s) => sum + s.lat, 0) / stops.length;
  // Ground metres per radian of Mercator x at this latitude, then SVG units per radian, fitting the stops.
  const metresPerRadian = EARTH_RADIUS_M * Math.max(0.01, Math.cos(meanLat * RAD));
  const fit = Math.min((width - 2 * PAD) / (maxX - minX || Infinity), (height - 2 * PAD) / (maxY - minY || Infinity));
  const scale = Math.min(fit, (width - 2 * PAD) / (MIN_SPAN_M / metresPerRadian));
  const [cx, cy] = [(minX + maxX) / 2, (minY + maxY) / 2];
  const at = ([x, y]: [number, number]): [number, number] => [
    Math.round((width / 2 + (x - cx) * scale) * 10) / 10,
    Math.round((height / 2 - (y - cy) * scale) * 10) / 10,
  ];

  const id = `route-${day}-${++nextId}`;
  const titleText = t.routeLabel(day, stops.map((s) => `${s.n} ${s.name}`).join(" → "));
  const svg = node("svg", {
    class: "sketch",
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "xMidYMid meet",
    role: "img",
    "aria-labelledby": `${id}-title`,
  });
  svg.append(
    node("title", { id: `${id}-title` }, titleText),
    node("defs", {}, node("marker", { id: `${id}-arrow`, viewBox: "0 0 10 10", refX: 5, refY: 5, markerWidth: 3.6, markerHeight: 3.6, orient: "auto" }, node("path", { class: "leg-arrow", d: "M1 1 9 5 1 9z" }))),
    node("rect", { class: "sketch-bg", width: width, height: height }),
  );
  const grid = node("g", { class: "sketch-grid", "aria-hidden": "true" });
  for (let x = 40; x < width; x += 40) grid.append(node("line", { x1: x, y1: 0, x2: x, y2: height }));
  for (let y = 40; y < height; y += 40) grid.append(node("line", { x1: 0, y1: y, x2: width, y2: y }));
  svg.append(grid);

  const legs = node("g", { class: "legs" });
  for (let i = 1; i < stops.length; i++) {
    const [from, to] = [stops[i - 1] as Stop, stops[i] as Stop];
    const [x1, y1] = at(points[i - 1] as [number, number]);
    const [x2, y2] = at(points[i] as [number, number]);
    const [mx, my] = [Math.round(((x1 + x2) / 2) * 10) / 10, Math.round(((y1 + y2) / 2) * 10) / 10];
    // A leg that passes over a stop with no coordinates is drawn dashed: the line is not the way taken.
    legs.append(
      node("path", {
        class: to.n - from.n > 1 ? "leg gap" : "leg",
        d: `M${x1} ${y1} L${mx} ${my} L${x2} ${y2}`,
        "marker-mid": `url(#${id}-arrow)`,
        "data-from": from.n,
        "data-to": to.n,
      }),
    );
  }
  svg.append(legs);

  const marks = node("g", { class: "stops" });
  stops.forEach((stop, i) => {
    const [x, y] = at(points[i] as [number, number]);
    marks.append(
      node(
        "g",
        { class: `stop cat-${stop.category}`, transform: `translate(${x} ${y})`, "data-stop": stop.n },
        node("title", {}, `${stop.n}. ${stop.name}`),
        node("circle", { r: 12 }),
        node("text", { "text-anchor": "middle", dy: "0.36em" }, String(stop.n)),
      ),
    );
  });
  svg.append(marks, scaleBar(metresPerRadian / scale, height, lang));
  return svg;
}

/** A bar of a round length (50 m … 500 km) at most 120 units long, bottom left. */
function scaleBar(metresPerUnit: number, height: number, lang: Lang): SVGGElement {
  const length = SCALE_STEPS_M.filter((m) => m / metresPerUnit <= 120).at(-1) ?? SCALE_STEPS_M[0] ?? 50;
  const units = Math.round((length / metresPerUnit) * 10) / 10;
  const [x, y] = [14, height - 14];
  return node(
    "g",
    { class: "scale", "aria-hidden": "true" },
    node("path", { d: `M${x} ${y - 5} V${y} H${x + units} V${y - 5}` }),
    node("text", { x: x + units + 6, y, dy: "0.1em" }, distance(length, lang)),
  );
}
