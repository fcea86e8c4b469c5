#!/usr/bin/env python3
"""Reads a plan's calendar back with PyPI's `icalendar` (a parser nobody here wrote) and checks it against
the plan's JSON (`tripstream plan … --json`):

- the file: CRLF line ends, no line longer than 75 octets, one VCALENDAR of VERSION 2.0;
- one VEVENT per activity, in order, with unique UIDs `…-d{day}-a{index}@tripstream`;
- each event's SUMMARY, LOCATION, GEO and DESCRIPTION (description and cost);
- its DTSTART: the activity's date and time as a wall-clock time in the destination's zone (TZID), at the
  UTC offset the IANA database gives for that moment, and at the same offset when the calendar's own
  VTIMEZONE is read instead of the database (dateutil's reading of it); floating when the file has no zone;
- its DTEND: the duration later in elapsed time.

Prints a JSON summary for the caller to assert on: {"events": n, "timeZone": name or null, "offsets":
[each distinct UTC offset of the events, in the order they occur]}.

    python3 scripts/check_ics.py PLAN.json CALENDAR.ics
"""

import datetime as dt
import json
import re
import sys
from zoneinfo import ZoneInfo

from icalendar import Calendar


def fail(message):
    print(f"check_ics: {message}", file=sys.stderr)
    sys.exit(1)


def check_lines(raw):
    if not raw.endswith(b"\r\n"):
        fail("the file does not end with CRLF")
    for n, line in enumerate(raw[:-2].split(b"\r\n"), 1):
        if b"\n" in line or b"\r" in line:
            fail(f"line {n} has a bare LF or CR")
        if len(line) > 75:
            fail(f"line {n} has {len(line)} octets, more than 75: {line!r}")


def offset_text(offset):
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


def main(plan_path, ics_path):
    plan = json.load(open(plan_path, encoding="utf-8"))
    raw = open(ics_path, "rb").read()
    check_lines(raw)
    cal = Calendar.from_ical(raw)
    if cal.name != "VCALENDAR" or str(cal.get("VERSION")) != "2.0" or not cal.get("PRODID"):
        fail("not a VCALENDAR of VERSION 2.0 with a PRODID")

    zones = cal.walk("VTIMEZONE")
    if len(zones) > 1:
        fail(f"{len(zones)} VTIMEZONEs, expected at most one")
    zone_name = str(zones[0]["TZID"]) if zones else None
    if zone_name is not None and zone_name != plan["destination"]["timezone"]:
        fail(f"VTIMEZONE {zone_name}, the plan's destination is in {plan['destination']['timezone']}")
    database = ZoneInfo(zone_name) if zone_name else None
    # The calendar's own VTIMEZONE, read by dateutil rather than looked up by name.
    own = zones[0].to_tz(lookup_tzid=False) if zones else None

    activities = [(day, i, a) for day in plan["days"] for i, a in enumerate(day["activities"], 1)]
    events = cal.walk("VEVENT")
    if len(events) != len(activities):
        fail(f"{len(events)} events for {len(activities)} activities")
    uids = [str(e["UID"]) for e in events]
    if len(set(uids)) != len(uids):
        fail("UIDs repeat")

    offsets = []
    for event, (day, index, activity) in zip(events, activities):
        where = f"day {day['day']} activity {index} ({activity['name']})"
        if not re.fullmatch(rf".+-d{day['day']}-a{index}@tripstream", str(event["UID"])):
            fail(f"{where}: UID {event['UID']}")
        if str(event["SUMMARY"]) != activity["name"]:
            fail(f"{where}: SUMMARY {event['SUMMARY']!r}")
        hours, minutes = map(int, activity["time"].split(":"))
        wall = dt.datetime.fromisoformat(day["date"]) + dt.timedelta(hours=hours, minutes=minutes)
        start = event.decoded("DTSTART")
        if database is None:
            if start.tzinfo is not None:
                fail(f"{where}: DTSTART {start} has a zone but the calendar has no VTIMEZONE")
            if start != wall:
                fail(f"{where}: DTSTART {start}, expected the floating time {wall}")
        else:
            if getattr(start.tzinfo, "key", None) != zone_name:
                fail(f"{where}: DTSTART {start!r} is not in {zone_name}")
            if start.replace(tzinfo=None) != wall:
                fail(f"{where}: DTSTART {start}, expected {wall} in {zone_name}")
            expected = database.utcoffset(wall)
            if start.utcoffset() != expected:
                fail(f"{where}: offset {start.utcoffset()}, the database says {expected}")
            if own.utcoffset(wall) != expected:
                fail(f"{where}: the VTIMEZONE gives {own.utcoffset(wall)} at {wall}, the database {expected}")
            text = offset_text(expected)
            if not offsets or offsets[-1] != text:
                offsets.append(text)

        duration = dt.timedelta(minutes=activity["durationMinutes"])
        if duration:
            end = event.decoded("DTEND")
            elapsed = (end - start) if database is None else (end.astimezone(dt.timezone.utc) - start.astimezone(dt.timezone.utc))
            if elapsed != duration:
                fail(f"{where}: DTEND {end} is {elapsed} after DTSTART, expected {duration}")
        elif "DTEND" in event:
            fail(f"{where}: a DTEND for an activity of no duration")

        if activity.get("area") and activity["area"] not in str(event.get("LOCATION", "")):
            fail(f"{where}: LOCATION {event.get('LOCATION')!r} lacks the area {activity['area']!r}")
        location = activity.get("location")
        if location:
            lat, lon = event.decoded("GEO")
            if abs(lat - location["lat"]) > 1e-6 or abs(lon - location["lon"]) > 1e-6:
                fail(f"{where}: GEO {lat};{lon}, expected {location['lat']};{location['lon']}")
        elif "GEO" in event:
            fail(f"{where}: GEO without a location")
        description = str(event.get("DESCRIPTION", ""))
        if activity.get("description", "").strip() not in description:
            fail(f"{where}: DESCRIPTION {description!r} lacks the description")
        if f"{activity['cost']:,}" not in description:
            fail(f"{where}: DESCRIPTION {description!r} lacks the cost {activity['cost']}")

    print(json.dumps({"events": len(events), "timeZone": zone_name, "offsets": offsets}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: check_ics.py PLAN.json CALENDAR.ics")
    main(sys.argv[1], sys.argv[2])
