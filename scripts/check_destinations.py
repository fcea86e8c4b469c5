#!/usr/bin/env python3
"""Checks the bundled destination files against data/destinations/README.md.

Usage: python3 scripts/check_destinations.py [data/destinations/*.yaml]
Exits non-zero and names the file and entry on the first problem it finds in each file.
"""
import math
import os
import re
import sys
import glob
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from public_holidays import public_holidays, RULES as HOLIDAY_RULES  # noqa: E402

CATEGORIES = {"sightseeing", "culture", "nature", "shopping", "activity", "nightlife", "cafe", "rest"}
MEAL_CATEGORIES = {"food", "cafe"}
MEALS = {"breakfast", "lunch", "dinner"}
DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
TAGS = {"history", "culture", "art", "architecture", "nature", "views", "shopping", "food", "nightlife",
        "family", "relaxation", "adventure", "kpop", "anime", "markets"}
BEST_TIMES = {"morning", "afternoon", "evening", "night", "any"}
HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# A stated visit length in a description: "takes 8 to 9 hours", "2-hour", "8~9시간" (not "24-hour").
STATED_HOURS = re.compile(r"(\d+)(?:\s*(?:–|-|to)\s*(\d+))?[- ]hours?\b|(\d+)(?:\s*~\s*(\d+))?\s*시간")
# Every place to have this many lunch and dinner places (not cafés) near it: within this many minutes by the
# destination's own transit model (a few km in a metro city, more where one drives), and at least NEAR_KM.
NEAR_KM = 2.5
NEAR_MINUTES = 20
NEAR_MEALS = 2
# When lunch and dinner are eaten, in minutes: a place open at those times needs them nearby.
MEAL_TIMES = {"lunch": (11 * 60 + 30, 14 * 60), "dinner": (18 * 60, 21 * 60)}
HOLIDAY_YEARS = range(2025, 2029)


def minutes(t):
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def check_bilingual(where, v, need_hangul=True):
    assert isinstance(v, dict) and set(v) == {"en", "ko"}, f"{where}: needs exactly en and ko"
    assert v["en"].strip() and v["ko"].strip(), f"{where}: empty text"
    if need_hangul:
        assert HANGUL.search(v["ko"]), f"{where}: ko has no Hangul: {v['ko']!r}"


def km(a, b):
    """Straight-line distance between two (lat, lon) points, in km (equirectangular; fine within a region)."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    return 6371.0 * math.hypot((lo2 - lo1) * math.cos((la1 + la2) / 2), la2 - la1)


def stated_hours(text):
    """(low, high) hours a description says a visit takes, or None."""
    for m in STATED_HOURS.finditer(text):
        lo, hi = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if lo == "24":
            continue  # "open 24 hours"
        return int(lo), int(hi or lo)
    return None


def check_hours(where, e):
    h = e["hours"]
    assert HHMM.match(h["open"]) and HHMM.match(h["close"]), f"{where}: hours must be HH:MM"
    assert minutes(h["open"]) < minutes(h["close"]) <= 24 * 60, f"{where}: open < close <= 24:00"
    assert minutes(h["close"]) - minutes(h["open"]) >= e["durationMinutes"], f"{where}: open shorter than a visit"
    for d in e.get("closedOn", []) or []:
        assert d in DAYS, f"{where}: closedOn {d!r}"


def check_file(path):
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    text = open(path, encoding="utf-8").read()
    assert "approximate" in text.lower(), f"{path}: say that prices are approximate"
    assert "source" in text.lower(), f"{path}: say where the figures come from"
    slug = path.rsplit("/", 1)[-1][:-5]
    assert doc["id"] == slug, f"{path}: id must be {slug}"
    check_bilingual("name", doc["name"])
    assert re.match(r"^[A-Z]{2}$", doc["country"]) and re.match(r"^[A-Z]{3}$", doc["currency"])
    assert -90 <= doc["lat"] <= 90 and -180 <= doc["lon"] <= 180
    assert "/" in doc["timezone"]
    b = doc["budget"]
    assert 0 < b["low"] < b["medium"] < b["high"], "budget: low < medium < high"
    assert len(doc["climate"]) == 12, "climate: 12 months"
    for i, c in enumerate(doc["climate"]):
        assert c["lowC"] < c["highC"], f"climate[{i}]: low < high"
        assert 0 <= c["rainChance"] <= 100, f"climate[{i}]: rainChance 0..100"
        check_bilingual(f"climate[{i}].summary", c["summary"])
    assert 3 <= len(doc["tips"]["en"]) == len(doc["tips"]["ko"]) <= 5, "tips: 3-5, same count in en and ko"
    for word in ("holiday", "transit"):
        assert word in text.split("\nid:")[0].lower(), f"{path}: the header must name the {word} source"
    check_profile(doc)
    ids = set()
    check_places(doc, ids)
    check_meals(doc, ids)
    for h in doc["holidays"]:
        for pid in h.get("closes", []) or []:
            assert pid in ids, f"holidays/{h['date']}: closes unknown id {pid!r}"
    check_planner_needs(doc)


def check_profile(doc):
    """mealWindows, transit and holidays."""
    w = doc["mealWindows"]
    assert set(w) == MEALS, "mealWindows: breakfast, lunch and dinner"
    for k, v in w.items():
        assert set(v) == {"from", "to"} and HHMM.match(v["from"]) and HHMM.match(v["to"]), f"mealWindows.{k}"
        assert minutes(v["from"]) < minutes(v["to"]), f"mealWindows.{k}: from < to"
    assert minutes(w["breakfast"]["from"]) < minutes(w["lunch"]["from"]) < minutes(w["dinner"]["from"]), \
        "mealWindows: breakfast, lunch, dinner in order"
    assert 17 * 60 <= minutes(w["dinner"]["from"]) <= 20 * 60, "mealWindows.dinner starts 17:00-20:00"
    t = doc["transit"]
    assert set(t) == {"walkMaxKm", "walkKmh", "speedKmh", "overheadMinutes"}, "transit: the four keys"
    assert 0.5 <= t["walkMaxKm"] <= 2.0 and 3.0 <= t["walkKmh"] <= 6.0, "transit: walking"
    assert 8 <= t["speedKmh"] <= 40, "transit.speedKmh 8-40"
    assert isinstance(t["overheadMinutes"], int) and 5 <= t["overheadMinutes"] <= 20, "transit.overheadMinutes 5-20"
    hs = doc["holidays"]
    dates = [str(h["date"]) for h in hs]
    assert dates == sorted(set(dates)), "holidays: in date order, each date once"
    for h in hs:
        check_bilingual(f"holidays/{h['date']}.name", h["name"])
        assert set(h) <= {"date", "name", "closes"}, f"holidays/{h['date']}: unknown key"
    for y in HOLIDAY_YEARS:
        assert any(d.startswith(f"{y}-") for d in dates), f"holidays: none in {y}"
    if doc["country"] in HOLIDAY_RULES:
        want = [str(d) for d, _, _ in public_holidays(doc["country"], HOLIDAY_YEARS)]
        missing, extra = sorted(set(want) - set(dates)), sorted(set(dates) - set(want))
        assert not missing and not extra, f"holidays: missing {missing}, not holidays {extra} (scripts/public_holidays.py)"


def check_places(doc, ids):
    places = doc["places"]
    assert len(places) >= 30, f"places: {len(places)} < 30"
    for p in places:
        w = f"places/{p.get('id')}"
        assert p["id"] not in ids, f"{w}: duplicate id"
        ids.add(p["id"])
        check_bilingual(w + ".name", p["name"])
        check_bilingual(w + ".description", p["description"])
        check_bilingual(w + ".area", p["area"])
        assert p["category"] in CATEGORIES, f"{w}: category {p['category']!r}"
        assert isinstance(p["cost"], int) and p["cost"] >= 0, f"{w}: cost must be a whole number >= 0"
        d = p["durationMinutes"]
        assert 30 <= d <= 600 and d % 15 == 0, f"{w}: durationMinutes"
        assert isinstance(p["indoor"], bool), f"{w}: indoor"
        far = 2.5 if p.get("dayTrip") else 1.0
        assert abs(p["lat"] - doc["lat"]) < far and abs(p["lon"] - doc["lon"]) < far, f"{w}: coordinates far from the city"
        check_hours(w, p)
        for t in p.get("tags", []):
            assert t in TAGS, f"{w}: tag {t!r}"
        check_place_day(doc, p, w)


def check_place_day(doc, p, w):
    """When in the day, for how long, and whether a place is a day trip or a flagship."""
    assert p.get("bestTime") in BEST_TIMES, f"{w}: bestTime one of {sorted(BEST_TIMES)}"
    assert set(p) <= {"id", "name", "description", "category", "area", "lat", "lon", "cost", "durationMinutes", "indoor",
                      "hours", "closedOn", "tags", "bestTime", "dayTrip", "flagship"}, f"{w}: unknown key"
    opens, closes, d = minutes(p["hours"]["open"]), minutes(p["hours"]["close"]), p["durationMinutes"]
    if p["category"] == "nightlife":
        assert p["bestTime"] == "night", f"{w}: nightlife is best at night"
    if p["bestTime"] == "night":
        assert closes >= 22 * 60, f"{w}: a night place must be open until 22:00 or later"
    if p["bestTime"] == "evening":
        assert closes >= 19 * 60, f"{w}: an evening place must be open until 19:00 or later"
    if p["bestTime"] == "morning":
        assert opens <= 10 * 60, f"{w}: a morning place must open by 10:00"
    if p["category"] == "nature" and not p["indoor"]:
        assert not (opens == 0 and closes == 24 * 60), f"{w}: outdoor nature needs gate hours or daylight, not 24 h"
        assert 4 * 60 <= opens and closes <= 22 * 60, f"{w}: outdoor nature between 04:00 and 22:00"
    for lang in ("en", "ko"):
        said = stated_hours(p["description"][lang])
        if said:
            lo, hi = said
            if p.get("dayTrip"):
                assert d >= lo * 60, f"{w}: the description says {lo}-{hi} h, the trip is {d} min"
            else:
                assert lo * 60 - 60 <= d <= hi * 60 + 60, f"{w}: the description says {lo}-{hi} h, durationMinutes {d}"
    if p.get("dayTrip"):
        assert 300 <= d <= 600, f"{w}: a day trip takes 300-600 min"
        assert p["cost"] > 0, f"{w}: a day trip's cost includes getting there"
        assert km((p["lat"], p["lon"]), (doc["lat"], doc["lon"])) >= 10, f"{w}: a day trip leaves the city"
    else:
        assert d <= 540, f"{w}: more than 9 h is a day trip"
    if p.get("flagship"):
        assert 0 < p["cost"] <= doc["budget"]["high"] // 2, f"{w}: a flagship costs something, at most half the high budget"


def check_meals(doc, ids):
    meals = doc["meals"]
    assert len(meals) >= 30, f"meals: {len(meals)} < 30"
    restaurants = [m for m in meals if m.get("category") == "food"]
    assert len(restaurants) >= 30, f"meals: {len(restaurants)} restaurants (category food, not cafe) < 30"
    for m in meals:
        w = f"meals/{m.get('id')}"
        assert m["id"] not in ids, f"{w}: duplicate id"
        ids.add(m["id"])
        check_bilingual(w + ".name", m["name"])
        check_bilingual(w + ".description", m["description"])
        check_bilingual(w + ".area", m["area"])
        assert m["category"] in MEAL_CATEGORIES, f"{w}: category"
        assert m["meals"] and set(m["meals"]) <= MEALS, f"{w}: meals"
        assert isinstance(m["cost"], int) and m["cost"] > 0, f"{w}: cost"
        assert 30 <= m["durationMinutes"] <= 120 and m["durationMinutes"] % 15 == 0, f"{w}: durationMinutes"
        assert abs(m["lat"] - doc["lat"]) < 1.0 and abs(m["lon"] - doc["lon"]) < 1.0, f"{w}: coordinates far"
        check_hours(w, m)
        if "breakfast" in m["meals"]:
            assert minutes(m["hours"]["open"]) <= 9 * 60, f"{w}: breakfast place must open by 09:00"
        if "lunch" in m["meals"]:
            assert minutes(m["hours"]["open"]) <= 12 * 60 and minutes(m["hours"]["close"]) >= 14 * 60, f"{w}: lunch hours"
        if "dinner" in m["meals"]:
            assert minutes(m["hours"]["open"]) <= 18 * 60 and minutes(m["hours"]["close"]) >= 20 * 60, f"{w}: dinner hours"
        assert set(m) <= {"id", "name", "description", "category", "meals", "area", "lat", "lon", "cost",
                          "durationMinutes", "hours", "closedOn", "flagship"}, f"{w}: unknown key"
        if m["category"] == "cafe":
            assert m["meals"] == ["breakfast"], f"{w}: a cafe is breakfast only, not lunch or dinner"
    b = doc["budget"]
    cheap = [m for m in meals if m["cost"] <= b["low"] // 3]
    high = [m for m in meals if m["cost"] >= b["medium"] * 2 // 5]
    mid = [m for m in meals if m not in cheap and m not in high]
    assert len(cheap) >= 8 and len(mid) >= 8 and len(high) >= 5, \
        f"meals: {len(cheap)} cheap (<= low/3), {len(mid)} mid, {len(high)} high-end (>= 0.4 medium); want 8/8/5"
    flagships = [m for m in meals if m.get("flagship")]
    assert 2 <= len(flagships) <= 4, f"meals: {len(flagships)} flagship tables (want 2-4)"
    for m in flagships:
        assert m in high and m["cost"] <= b["high"] // 2, f"meals/{m['id']}: a flagship is high-end, at most half the high budget"
    assert sum(1 for m in meals if "breakfast" in m["meals"]) >= 5, "need >= 5 breakfast places"


def check_planner_needs(doc):
    """What the planner needs to build good days everywhere."""
    b = doc["budget"]
    meals = doc["meals"]
    places = [p for p in doc["places"] if not p.get("dayTrip")]
    by_meal = {k: [m for m in meals if k in m["meals"]] for k in MEALS}
    assert len(by_meal["breakfast"]) >= 3, "need >= 3 breakfast places"
    assert len(by_meal["lunch"]) >= 6 and len(by_meal["dinner"]) >= 6, "need >= 6 lunch and >= 6 dinner places"
    areas = {}
    for p in places:
        areas.setdefault(p["area"]["en"], []).append(p)
    assert 5 <= len(areas) <= 9, f"areas: {len(areas)} (want 5-9)"
    for a, ps in areas.items():
        assert len(ps) >= 3, f"area {a}: {len(ps)} places (want >= 3)"
        eats = [m for m in meals if m["area"]["en"] == a and ({"lunch", "dinner"} & set(m["meals"]))]
        assert eats, f"area {a}: no lunch/dinner place in this area"
    trips = [p for p in doc["places"] if p.get("dayTrip")]
    assert 2 <= len(trips) <= 4, f"day trips: {len(trips)} (want 2-4)"
    flagships = [p for p in doc["places"] if p.get("flagship")]
    assert 3 <= len(flagships) <= 6, f"flagship places: {len(flagships)} (want 3-6)"
    t = doc["transit"]
    near_km = max(NEAR_KM, (NEAR_MINUTES - t["overheadMinutes"]) / 60 * t["speedKmh"])
    for p in places:
        # A place needs lunch nearby if it is open at lunchtime, dinner if it is open in the evening.
        opens, closes = minutes(p["hours"]["open"]), minutes(p["hours"]["close"])
        kinds = [k for k, (start, end) in MEAL_TIMES.items() if opens < end and closes > start]
        for kind in kinds:
            near = [m for m in by_meal[kind] if m["category"] == "food" and km((p["lat"], p["lon"]), (m["lat"], m["lon"])) <= near_km]
            assert len(near) >= NEAR_MEALS, f"places/{p['id']}: {len(near)} {kind} places within {near_km:.1f} km"
    assert sum(1 for p in places if p["indoor"]) >= 12, "need >= 12 indoor places for rainy days"
    assert sum(1 for p in places if minutes(p["hours"]["close"]) >= 22 * 60) >= 3, "need >= 3 places open till 22:00+"
    assert sum(1 for p in places if p["cost"] == 0) >= 5, "need >= 5 free places"
    # The low budget must buy a real day: the cheapest breakfast, lunch and dinner plus two cheap places.
    cheapest = lambda k: min(m["cost"] for m in by_meal[k])
    two_cheap = sum(sorted(p["cost"] for p in places)[:2])
    floor = cheapest("breakfast") + cheapest("lunch") + cheapest("dinner") + two_cheap
    assert b["low"] >= floor * 1.3, f"budget.low {b['low']} < 1.3 x a minimal day ({floor})"
    # The medium budget must buy a typical day: the median breakfast, lunch and dinner plus three median places.
    median = lambda costs: sorted(costs)[len(costs) // 2]
    median_day = sum(median([m["cost"] for m in by_meal[k]]) for k in MEALS) + 3 * median([p["cost"] for p in places])
    assert b["medium"] >= median_day, f"budget.medium {b['medium']} < a typical day ({median_day})"


def main():
    paths = sys.argv[1:] or sorted(glob.glob("data/destinations/*.yaml"))
    bad = 0
    for path in paths:
        try:
            check_file(path)
            print(f"ok   {path}")
        except (AssertionError, KeyError, TypeError) as e:
            bad += 1
            print(f"FAIL {path}: {type(e).__name__}: {e}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
