#!/usr/bin/env python3
"""Public holidays of the bundled destinations' countries, computed from each country's rules.

Usage: python3 scripts/public_holidays.py COUNTRY [FIRST_YEAR LAST_YEAR]
Prints a `holidays:` block for a destination file (dates, English and Korean names, no `closes`).
scripts/check_destinations.py imports `public_holidays` to check every file's dates.

Rules and sources:
- KR: Regulations on Holidays of Government Offices and, from 2026, the Public Holidays Act (law.go.kr)
  as amended in February 2026 (Labour Day and Constitution Day become public holidays). Substitute
  holidays: Seollal and Chuseok when a day falls on a Sunday or on another holiday; Independence
  Movement Day, Labour Day, Children's Day, Buddha's Birthday, Constitution Day, Liberation Day,
  National Foundation Day, Hangul Day and Christmas when on a Saturday, Sunday or another holiday.
  Lunar dates from the Korea Astronomy and Space Science Institute (KASI) calendar; election days from
  the Public Official Election Act; the 2025-01-27 temporary holiday by cabinet decision.
- JP: Act on National Holidays (Cabinet Office, cao.go.jp): Happy Monday rules, the equinoxes (the
  National Astronomical Observatory of Japan's almanac; the usual formula gives the same days
  1980-2099), substitute holidays after a Sunday and citizens' holidays between two holidays.
- TH: the Cabinet's annual holiday lists and the Bank of Thailand's holiday calendar; Buddhist holidays
  follow the Thai lunar calendar; a holiday on a weekend gives a day in lieu (not Buddhist Lent Day).
- FR: Code du travail L3133-1; Easter by the Gregorian computus.
- US: 5 U.S.C. 6103 federal holidays and the OPM rule for a holiday on a weekend (Friday before,
  Monday after).
Every date was cross-checked against python-holidays 0.109.
"""
import sys
from datetime import date, timedelta

# Lunar-calendar dates that no simple rule gives.
KR_LUNAR = {  # Seollal (lunar 1/1), Buddha's Birthday (lunar 4/8), Chuseok (lunar 8/15), KASI.
    2025: (date(2025, 1, 29), date(2025, 5, 5), date(2025, 10, 6)),
    2026: (date(2026, 2, 17), date(2026, 5, 24), date(2026, 9, 25)),
    2027: (date(2027, 2, 7), date(2027, 5, 13), date(2027, 9, 15)),
    2028: (date(2028, 1, 27), date(2028, 5, 2), date(2028, 10, 3)),
}
KR_SPECIAL = [  # Elections and temporary holidays.
    (date(2025, 1, 27), "Temporary public holiday", "임시공휴일"),
    (date(2025, 6, 3), "Presidential election day", "제21대 대통령 선거일"),
    (date(2026, 6, 3), "Local elections day", "제9회 전국동시지방선거일"),
    (date(2028, 4, 12), "National Assembly election day", "제23대 국회의원 선거일"),
]
TH_LUNAR = {  # Makha Bucha, Visakha Bucha, Asarnha Bucha (Buddhist Lent Day is the day after).
    2025: (date(2025, 2, 12), date(2025, 5, 11), date(2025, 7, 10)),
    2026: (date(2026, 3, 3), date(2026, 5, 31), date(2026, 7, 29)),
    2027: (date(2027, 2, 21), date(2027, 5, 20), date(2027, 7, 18)),
    2028: (date(2028, 2, 10), date(2028, 5, 8), date(2028, 7, 6)),
}
TH_SPECIAL = [  # Extra holidays the Cabinet declared.
    (date(2025, 6, 2), "Special public holiday", "특별 공휴일"),
    (date(2025, 8, 11), "Special public holiday", "특별 공휴일"),
    (date(2026, 1, 2), "Special public holiday", "특별 공휴일"),
]
SAT, SUN = 5, 6


def nth_weekday(year, month, weekday, n):
    """The n-th `weekday` (0 = Monday) of a month; n = -1 is the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter(year):
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = (h + l - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def korea(year):
    seollal, buddha, chuseok = KR_LUNAR[year]
    d = lambda m, day: date(year, m, day)
    days = {}  # date -> list of (en, ko, substitute rule)
    add = lambda at, en, ko, rule=None: days.setdefault(at, []).append((en, ko, rule))
    add(d(1, 1), "New Year's Day", "신정")
    one = timedelta(days=1)
    for at, en, ko in [(seollal - one, "Seollal holiday", "설날 연휴"), (seollal, "Seollal (Lunar New Year)", "설날"),
                       (seollal + one, "Seollal holiday", "설날 연휴")]:
        add(at, en, ko, "seollal")
    add(d(3, 1), "Independence Movement Day", "삼일절", "weekend")
    if year >= 2026:
        add(d(5, 1), "Labour Day", "노동절", "weekend")
    add(d(5, 5), "Children's Day", "어린이날", "weekend")
    add(buddha, "Buddha's Birthday", "부처님오신날", "weekend")
    add(d(6, 6), "Memorial Day", "현충일")
    if year >= 2026:
        add(d(7, 17), "Constitution Day", "제헌절", "weekend")
    add(d(8, 15), "Liberation Day", "광복절", "weekend")
    for at, en, ko in [(chuseok - one, "Chuseok holiday", "추석 연휴"), (chuseok, "Chuseok", "추석"),
                       (chuseok + one, "Chuseok holiday", "추석 연휴")]:
        add(at, en, ko, "chuseok")
    add(d(10, 3), "National Foundation Day", "개천절", "weekend")
    add(d(10, 9), "Hangul Day", "한글날", "weekend")
    add(d(12, 25), "Christmas Day", "기독탄신일", "weekend")
    for at, en, ko in KR_SPECIAL:
        if at.year == year:
            add(at, en, ko)
    # Substitute holidays: one per holiday (or holiday period) that a weekend or another holiday eats.
    needs = []
    for period in ("seollal", "chuseok"):
        span = sorted(at for at, hs in days.items() if any(r == period for _, _, r in hs))
        if any(at.weekday() == SUN or len(days[at]) > 1 for at in span):
            en = "Seollal" if period == "seollal" else "Chuseok"
            needs.append((span[-1], f"Substitute holiday for {en}", f"{'설날' if period == 'seollal' else '추석'} 대체공휴일"))
    for at, hs in sorted(days.items()):
        if any(r in ("seollal", "chuseok") for _, _, r in hs):
            continue  # Counted with the Seollal or Chuseok period.
        eligible = [(en, ko) for en, ko, r in hs if r == "weekend"]
        if eligible and (at.weekday() in (SAT, SUN) or len(hs) > 1):
            # Two holidays on one day give one substitute day.
            en = " and ".join(e for e, _ in eligible)
            ko = "·".join(k for _, k in eligible)
            needs.append((at, f"Substitute holiday for {en}", f"{ko} 대체공휴일"))
    for after, en, ko in sorted(needs):
        at = after + one
        while at.weekday() in (SAT, SUN) or at in days:
            at += one
        add(at, en, ko)
    return [(at, " / ".join(h[0] for h in hs), " · ".join(h[1] for h in hs)) for at, hs in sorted(days.items())]


def japan(year):
    d = lambda m, day: date(year, m, day)
    off = year - 1980
    spring = int(20.8431 + 0.242194 * off) - off // 4
    autumn = int(23.2488 + 0.242194 * off) - off // 4
    days = {
        d(1, 1): ("New Year's Day", "새해 첫날"),
        nth_weekday(year, 1, 0, 2): ("Coming of Age Day", "성인의 날"),
        d(2, 11): ("National Foundation Day", "건국기념일"),
        d(2, 23): ("The Emperor's Birthday", "천황탄생일"),
        d(3, spring): ("Vernal Equinox Day", "춘분의 날"),
        d(4, 29): ("Showa Day", "쇼와의 날"),
        d(5, 3): ("Constitution Memorial Day", "헌법기념일"),
        d(5, 4): ("Greenery Day", "녹색의 날"),
        d(5, 5): ("Children's Day", "어린이날"),
        nth_weekday(year, 7, 0, 3): ("Marine Day", "바다의 날"),
        d(8, 11): ("Mountain Day", "산의 날"),
        nth_weekday(year, 9, 0, 3): ("Respect for the Aged Day", "경로의 날"),
        d(9, autumn): ("Autumnal Equinox Day", "추분의 날"),
        nth_weekday(year, 10, 0, 2): ("Sports Day", "스포츠의 날"),
        d(11, 3): ("Culture Day", "문화의 날"),
        d(11, 23): ("Labour Thanksgiving Day", "근로감사의 날"),
    }
    one = timedelta(days=1)
    extra = {}
    for at in sorted(days):
        if at.weekday() == SUN:  # The next day that is not a holiday.
            sub = at + one
            while sub in days:
                sub += one
            extra[sub] = ("Substitute holiday", "대체 휴일")
    days.update(extra)
    for at in sorted(days):  # A weekday between two holidays is a holiday too.
        mid = at + one
        if mid not in days and mid + one in days and mid.weekday() != SUN:
            extra[mid] = ("Citizens' holiday", "국민의 휴일")
    days.update(extra)
    return [(at, en, ko) for at, (en, ko) in sorted(days.items())]


def thailand(year):
    makha, visakha, asarnha = TH_LUNAR[year]
    d = lambda m, day: date(year, m, day)
    fixed = [
        (d(1, 1), "New Year's Day", "신정"),
        (makha, "Makha Bucha Day", "마카부차"),
        (d(4, 6), "Chakri Memorial Day", "짜끄리 왕조 기념일"),
        (d(4, 13), "Songkran", "송끄란"),
        (d(4, 14), "Songkran", "송끄란"),
        (d(4, 15), "Songkran", "송끄란"),
        (d(5, 1), "National Labour Day", "노동절"),
        (d(5, 4), "Coronation Day", "대관식 기념일"),
        (visakha, "Visakha Bucha Day", "위사카부차"),
        (d(6, 3), "Queen Suthida's Birthday", "수티다 왕비 탄신일"),
        (asarnha, "Asarnha Bucha Day", "아산하부차"),
        (d(7, 28), "King Vajiralongkorn's Birthday", "와치랄롱꼰 국왕 탄신일"),
        (d(8, 12), "Queen Mother's Birthday and Mother's Day", "왕대비 탄신일·어머니의 날"),
        (d(10, 13), "King Bhumibol Memorial Day", "푸미폰 국왕 서거 기념일"),
        (d(10, 23), "Chulalongkorn Day", "쭐랄롱꼰 대왕 기념일"),
        (d(12, 5), "King Bhumibol's Birthday and Father's Day", "푸미폰 국왕 탄신일·아버지의 날"),
        (d(12, 10), "Constitution Day", "제헌절"),
        (d(12, 31), "New Year's Eve", "연말(12월 31일)"),
    ]
    days = {at: (en, ko) for at, en, ko in fixed}
    lent = asarnha + timedelta(days=1)
    days[lent] = ("Buddhist Lent Day", "카오판사(안거 시작일)")
    for at, en, ko in TH_SPECIAL:
        if at.year == year:
            days[at] = (en, ko)
    one = timedelta(days=1)
    taken = set(days)
    for at, en, ko in sorted(fixed):  # A holiday on a weekend gives the next working day off.
        if at.weekday() in (SAT, SUN):
            sub = at + one
            while sub.weekday() in (SAT, SUN) or sub in taken:
                sub += one
            if sub.year == year:
                days[sub] = (f"{en} (in lieu)", f"{ko} 대체 휴일")
                taken.add(sub)
    return [(at, en, ko) for at, (en, ko) in sorted(days.items())]


def france(year):
    e = easter(year)
    d = lambda m, day: date(year, m, day)
    return sorted([
        (d(1, 1), "New Year's Day", "신정"),
        (e + timedelta(days=1), "Easter Monday", "부활절 월요일"),
        (d(5, 1), "Labour Day", "노동절"),
        (d(5, 8), "Victory in Europe Day", "제2차 세계대전 전승 기념일"),
        (e + timedelta(days=39), "Ascension Day", "예수 승천일"),
        (e + timedelta(days=50), "Whit Monday", "성령 강림 월요일"),
        (d(7, 14), "Bastille Day", "혁명기념일(바스티유의 날)"),
        (d(8, 15), "Assumption Day", "성모 승천일"),
        (d(11, 1), "All Saints' Day", "만성절"),
        (d(11, 11), "Armistice Day", "휴전 기념일"),
        (d(12, 25), "Christmas Day", "성탄절"),
    ])


def united_states(year):
    d = lambda m, day: date(year, m, day)
    days = [
        (d(1, 1), "New Year's Day", "신정"),
        (nth_weekday(year, 1, 0, 3), "Martin Luther King Jr. Day", "마틴 루서 킹 주니어의 날"),
        (nth_weekday(year, 2, 0, 3), "Washington's Birthday (Presidents' Day)", "대통령의 날"),
        (nth_weekday(year, 5, 0, -1), "Memorial Day", "메모리얼 데이(현충일)"),
        (d(6, 19), "Juneteenth", "준틴스(노예 해방 기념일)"),
        (d(7, 4), "Independence Day", "독립기념일"),
        (nth_weekday(year, 9, 0, 1), "Labor Day", "노동절"),
        (nth_weekday(year, 10, 0, 2), "Columbus Day", "콜럼버스의 날"),
        (d(11, 11), "Veterans Day", "재향군인의 날"),
        (nth_weekday(year, 11, 3, 4), "Thanksgiving Day", "추수감사절"),
        (d(12, 25), "Christmas Day", "성탄절"),
    ]
    observed = []
    for at, en, ko in days:
        if at.weekday() == SAT:
            observed.append((at - timedelta(days=1), f"{en} (observed)", f"{ko} 대체 휴일"))
        elif at.weekday() == SUN:
            observed.append((at + timedelta(days=1), f"{en} (observed)", f"{ko} 대체 휴일"))
    # New Year's Day on a Saturday is observed on 31 December of the year before.
    next_new_year = date(year + 1, 1, 1)
    if next_new_year.weekday() == SAT:
        observed.append((date(year, 12, 31), "New Year's Day (observed)", "신정 대체 휴일"))
    return sorted(days + [o for o in observed if o[0].year == year])


RULES = {"KR": korea, "JP": japan, "TH": thailand, "FR": france, "US": united_states}
YEARS = range(2025, 2029)


def public_holidays(country, years=YEARS):
    """Every public holiday of `country` in `years`: a list of (date, English name, Korean name)."""
    return [h for y in years for h in RULES[country](y)]


def main():
    if len(sys.argv) not in (2, 4) or sys.argv[1] not in RULES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(RULES)}}} [FIRST_YEAR LAST_YEAR]")
    years = range(int(sys.argv[2]), int(sys.argv[3]) + 1) if len(sys.argv) == 4 else YEARS
    print("holidays:")
    for at, en, ko in public_holidays(sys.argv[1], years):
        print(f'  - {{date: "{at}", name: {{en: "{en}", ko: "{ko}"}}}}')


if __name__ == "__main__":
    main()
