// Line icons drawn for this page (24×24, currentColor), so nothing is fetched and no emoji font is needed.

import type { DayWeather } from "../../clients/typescript/src/index.js";

const open = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">`;

export const ICONS = {
  sun: `${open}<circle cx="12" cy="12" r="4.2"/><path d="M12 2.5v2.2M12 19.3v2.2M4.6 4.6l1.6 1.6M17.8 17.8l1.6 1.6M2.5 12h2.2M19.3 12h2.2M4.6 19.4l1.6-1.6M17.8 6.2l1.6-1.6"/></svg>`,
  partly: `${open}<path d="M8.5 3.2v1.6M3.2 8.5h1.6M4.7 4.7l1.1 1.1M12.3 4.7l-1.1 1.1"/><path d="M5.9 11.2a3.6 3.6 0 1 1 6.2-3.4"/><path d="M8 19.5h9.2a3.8 3.8 0 0 0 .4-7.6 5 5 0 0 0-9.6 1.4A3.1 3.1 0 0 0 8 19.5z"/></svg>`,
  cloud: `${open}<path d="M7 18.5h10.5a4.2 4.2 0 0 0 .4-8.4 5.8 5.8 0 0 0-11.1 1.7A3.4 3.4 0 0 0 7 18.5z"/></svg>`,
  rain: `${open}<path d="M7 14.5h10.5a4.2 4.2 0 0 0 .4-8.4 5.8 5.8 0 0 0-11.1 1.7A3.4 3.4 0 0 0 7 14.5z"/><path d="M8.5 17.5l-1 2.5M12.5 17.5l-1 2.5M16.5 17.5l-1 2.5"/></svg>`,
  snow: `${open}<path d="M7 14h10.5a4.2 4.2 0 0 0 .4-8.4 5.8 5.8 0 0 0-11.1 1.7A3.4 3.4 0 0 0 7 14z"/><path d="M8 18h.01M12 17.5h.01M16 18h.01M10 21h.01M14 21h.01" stroke-width="2.6"/></svg>`,
  drop: `${open}<path d="M12 3.5s5.5 6.1 5.5 10a5.5 5.5 0 0 1-11 0c0-3.9 5.5-10 5.5-10z"/></svg>`,
  pin: `${open}<path d="M12 21s-6.5-5.7-6.5-11a6.5 6.5 0 0 1 13 0c0 5.3-6.5 11-6.5 11z"/><circle cx="12" cy="10" r="2.3"/></svg>`,
  clock: `${open}<circle cx="12" cy="12" r="8.5"/><path d="M12 7.5V12l3 2"/></svg>`,
  roof: `${open}<path d="M3.5 11L12 4l8.5 7"/><path d="M6 9.5V20h12V9.5"/></svg>`,
  tree: `${open}<path d="M12 21v-5"/><path d="M12 3l5.5 8h-3l4 5H5.5l4-5h-3z"/></svg>`,
  warn: `${open}<path d="M12 4l9 16H3z"/><path d="M12 10v4.5M12 17.2h.01"/></svg>`,
  bulb: `${open}<path d="M9 18h6M10 21h4"/><path d="M12 3a6 6 0 0 0-3.6 10.8c.7.6 1.1 1.3 1.1 2.2h5c0-.9.4-1.6 1.1-2.2A6 6 0 0 0 12 3z"/></svg>`,
  route: `${open}<circle cx="6" cy="18" r="2.2"/><circle cx="18" cy="6" r="2.2"/><path d="M8.2 18H15a3 3 0 0 0 0-6H9a3 3 0 0 1 0-6h6.8"/></svg>`,
  alert: `${open}<circle cx="12" cy="12" r="9"/><path d="M12 7.5v5.5M12 16.3h.01"/></svg>`,
  print: `${open}<path d="M7 8V3.5h10V8"/><rect x="3.5" y="8" width="17" height="8.5" rx="2"/><path d="M7 14h10v6.5H7z"/></svg>`,
  check: `${open}<path d="M5 12.5l4.5 4.5L19 7.5"/></svg>`,
  calendar: `${open}<rect x="3.5" y="5" width="17" height="15.5" rx="2"/><path d="M3.5 10h17M8 3v4M16 3v4M12 13v5M9.5 15.5h5"/></svg>`,
} as const;

/** An icon for a day's weather, from its rain chance and temperature. */
export function weatherIcon(weather: DayWeather): string {
  const rain = weather.precipitationChance;
  if (rain >= 40 && weather.tempMaxC <= 2) return ICONS.snow;
  if (rain >= 60) return ICONS.rain;
  if (rain >= 40) return ICONS.cloud;
  if (rain >= 25) return ICONS.partly;
  return ICONS.sun;
}
