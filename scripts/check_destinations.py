#!/usr/bin/env python3
"""Checks the bundled destination files against data/destinations/README.md.

Usage: python3 scripts/check_destinations.py [data/destinations/*.yaml]
Exits non-zero and names the file and entry on the first problem it finds in each file.
"""
import re
import sys
import glob
import yaml

CATEGORIES = {"sightseeing", "culture", "nature", "shopping", "activity", "nightlife", "cafe", "rest"}
MEAL_CATEGORIES = {"food", "cafe"}
MEALS = {"breakfast", "lunch", "dinner"}
DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
TAGS = {"history", "culture", "art", "architecture", "nature", "views", "shopping", "food", "nightlife",
        "family", "relaxation", "adventure", "kpop", "anime", "markets"}
HHMM = re.compile(r"^([01]\d|2[0-4]):[0-5]\d$")
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def minutes(t):
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def check_bilingual(where, v, need_hangul=True):
    assert isinstance(v, dict) and set(v) == {"en", "ko"}, f"{where}: needs exactly en and ko"
    assert v["en"].strip() and v["ko"].strip(), f"{where}: empty text"
    if need_hangul:
        assert HANGUL.search(v["ko"]), f"{where}: ko has no Hangul: {v['ko']!r}"


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

    ids = set()
    places = doc["places"]
    assert len(places) >= 30, f"places: {len(places)} < 30"
    for p in places:
        w = f"places/{p.get('id')}"
        assert p["id"] not in ids, f"{w}: duplicate id"
        ids.add(p["id"])
        check_bilingual(w + ".name", p["name"], need_hangul=doc["country"] == "KR" or True)
        check_bilingual(w + ".description", p["description"])
        check_bilingual(w + ".area", p["area"])
        assert p["category"] in CATEGORIES, f"{w}: category {p['category']!r}"
        assert isinstance(p["cost"], int) and p["cost"] >= 0, f"{w}: cost must be a whole number >= 0"
        assert 30 <= p["durationMinutes"] <= 240 and p["durationMinutes"] % 15 == 0, f"{w}: durationMinutes"
        assert isinstance(p["indoor"], bool), f"{w}: indoor"
        assert abs(p["lat"] - doc["lat"]) < 1.0 and abs(p["lon"] - doc["lon"]) < 1.0, f"{w}: coordinates far from the city"
        check_hours(w, p)
        for t in p.get("tags", []):
            assert t in TAGS, f"{w}: tag {t!r}"
    meals = doc["meals"]
    assert len(meals) >= 14, f"meals: {len(meals)} < 14"
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
        assert 30 <= m["durationMinutes"] <= 120, f"{w}: durationMinutes"
        assert abs(m["lat"] - doc["lat"]) < 1.0 and abs(m["lon"] - doc["lon"]) < 1.0, f"{w}: coordinates far"
        check_hours(w, m)
        if "breakfast" in m["meals"]:
            assert minutes(m["hours"]["open"]) <= 9 * 60, f"{w}: breakfast place must open by 09:00"
        if "lunch" in m["meals"]:
            assert minutes(m["hours"]["open"]) <= 12 * 60 and minutes(m["hours"]["close"]) >= 14 * 60, f"{w}: lunch hours"
        if "dinner" in m["meals"]:
            assert minutes(m["hours"]["open"]) <= 18 * 60 and minutes(m["hours"]["close"]) >= 20 * 60, f"{w}: dinner hours"

    # What the planner needs to build good days everywhere.
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
    assert sum(1 for p in places if p["indoor"]) >= 12, "need >= 12 indoor places for rainy days"
    assert sum(1 for p in places if minutes(p["hours"]["close"]) >= 22 * 60) >= 3, "need >= 3 places open till 22:00+"
    assert sum(1 for p in places if p["cost"] == 0) >= 5, "need >= 5 free places"
    # The low budget must buy a real day: the cheapest breakfast, lunch and dinner plus two cheap places.
    cheapest = lambda k: min(m["cost"] for m in by_meal[k])
    two_cheap = sum(sorted(p["cost"] for p in places)[:2])
    floor = cheapest("breakfast") + cheapest("lunch") + cheapest("dinner") + two_cheap
    assert b["low"] >= floor * 1.3, f"budget.low {b['low']} < 1.3 x a minimal day ({floor})"
    median_day = sorted(m["cost"] for m in meals)[len(meals) // 2] * 3 + sorted(p["cost"] for p in places)[len(places) // 2] * 3
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
