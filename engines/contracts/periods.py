"""The period a request names, in Portuguese or English, read from its folded text (see `names.fold`):
months and month ranges, years and year ranges, "since"/"until", and periods relative to today."""
from __future__ import annotations

import calendar
import datetime
import re

MONTHS = {name: number for number, names in enumerate((
    "janeiro january jan", "fevereiro february feb fev", "marco march", "abril april apr abr", "maio may",
    "junho june jun", "julho july jul", "agosto august aug", "setembro september sept", "outubro october",
    "novembro november nov", "dezembro december dec"), start=1) for name in names.split()}
MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + ")"
YEAR = r"((?:19|20)\d\d)"
OF_YEAR = rf"(?:,?\s+(?:de\s+|of\s+)?{YEAR})?"
MONTH_RANGE = re.compile(rf"\b(?:(?:from|de|desde|between|entre)\s+)?{MONTH}{OF_YEAR}\s+"
                         rf"(?:to|until|till|through|and|a|ate|e|-)\s+{MONTH}{OF_YEAR}\b")
ONE_MONTH = re.compile(rf"\b{MONTH}{OF_YEAR}\b")
MAY_BEFORE = re.compile(r"\b(in|from|to|until|since|and|between|of|during|em|de|desde|ate)\s*$")
YEAR_RANGE = re.compile(rf"\b(?:(?:from|de|between|entre)\s+){YEAR}\s+(?:to|until|through|and|a|ate|e)\s+{YEAR}\b"
                        rf"|\b{YEAR}\s*-\s*{YEAR}\b")
SINCE = re.compile(rf"\b(?:since|after|from|desde|depois de|a partir de)\s+{YEAR}\b")
UNTIL = re.compile(rf"\b(?:until|till|before|up to|through|ate|antes de)\s+{YEAR}\b")
BARE_YEAR = re.compile(rf"\b{YEAR}\b")
LAST_YEAR = re.compile(r"\b(?:last|previous|past) year\b|\bano (?:passado|anterior)\b|\bultimo ano\b")
THIS_YEAR = re.compile(r"\b(?:this|current) year\b|\b(?:n?este|n?esse) ano\b|\bano (?:atual|corrente)\b")
LAST_MONTH = re.compile(r"\b(?:last|previous|past) month\b|\bmes (?:passado|anterior)\b|\bultimo mes\b")
LAST_N = re.compile(r"\b(?:last|past|previous) (\d{1,3}) (months?|years?)\b|\bultimos (\d{1,3}) (mes(?:es)?|anos?)\b")

Span = tuple[datetime.date | None, datetime.date | None]
Period = tuple[datetime.date | None, datetime.date | None, tuple[int, int] | None]


def period_of(folded: str, today: datetime.date) -> tuple[Period, str]:
    """(start, end, months) the text names (None: not named), and the text without them."""
    months, years, folded = month_range(folded)
    (start, end), folded = relative(folded, today)
    if start is None and end is None:
        (start, end), folded = year_span(folded)
    if months and years:
        start, end = first_day(years[0], months[0]), last_day(years[1], months[1])
        return (start, end, None), folded
    if months and start and end and start.year == end.year and (start.month, end.month) == (1, 12):
        return (first_day(start.year, months[0]), last_day(end.year, months[1]), None), folded
    return (start, end, months), folded


def month_range(folded: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None, str]:
    """The months named (first, last), their years if given (first, last), and the rest of the text."""
    for pattern in (MONTH_RANGE, ONE_MONTH):
        for match in pattern.finditer(folded):
            groups = match.groups() if pattern is MONTH_RANGE else match.groups() * 2
            if groups[0] == "may" and not (groups[1] or MAY_BEFORE.search(folded[:match.start()])):
                continue  # "contracts that may be overpriced"
            months = (MONTHS[groups[0]], MONTHS[groups[2]])
            year_last = groups[3] or groups[1]
            years = (int(groups[1] or year_last), int(year_last)) if year_last else None
            return months, years, blank(folded, match)
    return None, None, folded


def relative(folded: str, today: datetime.date) -> tuple[Span, str]:
    """Periods relative to today: last year, this year, last month, the last N months or years."""
    match = LAST_YEAR.search(folded)
    if match:
        return (datetime.date(today.year - 1, 1, 1), datetime.date(today.year - 1, 12, 31)), blank(folded, match)
    match = THIS_YEAR.search(folded)
    if match:
        return (datetime.date(today.year, 1, 1), datetime.date(today.year, 12, 31)), blank(folded, match)
    match = LAST_MONTH.search(folded)
    if match:
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
        return (first_day(year, month), last_day(year, month)), blank(folded, match)
    match = LAST_N.search(folded)
    if match:
        count, unit = int(match.group(1) or match.group(3)), match.group(2) or match.group(4)
        months = count if unit.startswith("m") else 12 * count
        return (months_before(today, months), today), blank(folded, match)
    return (None, None), folded


def year_span(folded: str) -> tuple[Span, str]:
    """Years: a range, since or until a year, or every year named (first to last)."""
    match = YEAR_RANGE.search(folded)
    if match:
        first, last = sorted(int(y) for y in match.groups() if y)
        return (datetime.date(first, 1, 1), datetime.date(last, 12, 31)), blank(folded, match)
    since, until = SINCE.search(folded), UNTIL.search(folded)
    if since or until:
        start = datetime.date(int(since.group(1)), 1, 1) if since else None
        end = datetime.date(int(until.group(1)), 12, 31) if until else None
        for match in (since, until):
            folded = blank(folded, match) if match else folded
        return (start, end), folded
    years = [int(y) for y in BARE_YEAR.findall(folded)]
    if years:
        return (datetime.date(min(years), 1, 1), datetime.date(max(years), 12, 31)), BARE_YEAR.sub(" ", folded)
    return (None, None), folded


def months_before(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` months earlier (the month's last day when it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return datetime.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def first_day(year: int, month: int) -> datetime.date:
    return datetime.date(year, month, 1)


def last_day(year: int, month: int) -> datetime.date:
    return datetime.date(year, month, calendar.monthrange(year, month)[1])


def blank(text: str, match: re.Match[str]) -> str:
    """The text with a match replaced by spaces."""
    return text[:match.start()] + " " * (match.end() - match.start()) + text[match.end():]
