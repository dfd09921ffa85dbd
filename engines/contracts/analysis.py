"""Contract analysis: four robust checks, yielded step by step (progress, anomalies, findings).

Rules and severities (thresholds in `Rules`):

1. **Price outlier.** A contract's unit price (value / quantity, or value) against comparable
   contracts: the same item when it has at least `min_peers` contracts, else the same category.
   Baseline = median; spread = 1.4826 × MAD. Flagged when the robust z-score ≥ `z_threshold`
   (3.5, Iglewicz & Hoaglin) and the price is at least 1.5× the median. `expected_value` = median ×
   quantity. Severity by ratio to the median: ≥ 5× or excess ≥ R$ 1 mi critical, ≥ 2.5× or excess
   ≥ R$ 100 mil high, otherwise medium. With MAD = 0, any price ≥ 1.5× the median is flagged.
2. **Supplier concentration.** Within one agency and category with at least `min_group` contracts,
   a supplier holding ≥ 60% of the spend. `expected_value` = the spend divided among the suppliers the
   category has across all agencies (at least 2); `actual_value` = the supplier's spend. High at ≥ 80%,
   otherwise medium.
3. **Split purchase.** At least 3 contracts of one agency, supplier and item within `split_window_days`,
   each between 50% and 100% of the direct-purchase limit, together above it. `expected_value` = the
   limit, `actual_value` = their sum. Critical at ≥ 5× the limit, high at ≥ 2×, otherwise medium.
4. **Duplicate contract.** Contracts with different ids and the same agency, supplier, item, value and
   date. `expected_value` = one contract's value, `actual_value` = all of them. Always high.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator, Sequence

from .model import Anomaly, Contract, Finding, Progress, Severity, Step
from .texts import PT, brl, count, kind_name, text

# Lei 14.133/2021, art. 75, II (compras e outros serviços), as updated by Decreto 12.343/2024 for 2025.
DIRECT_PURCHASE_LIMIT = 62_725.59


@dataclass(frozen=True)
class Rules:
    """The thresholds of every check."""

    min_peers: int = 5
    z_threshold: float = 3.5
    min_ratio: float = 1.5
    min_group: int = 10
    concentration_share: float = 0.6
    split_window_days: int = 30
    split_limit: float = DIRECT_PURCHASE_LIMIT


def analyse(contracts: Sequence[Contract], rules: Rules = Rules(), lang: str = PT) -> Iterator[Step]:
    """Progress, anomalies as they are found, then findings, all worded in `lang`; ends with Progress(..., 100)."""
    found: list[Anomaly] = []
    yield Progress("analyzing_contracts", 5.0, text(lang, "analysing", contracts=count(len(contracts), lang)))
    stages = ((price_outliers, "checking_prices"), (concentration, "checking_concentration"),
              (split_purchases, "checking_split_purchases"), (duplicates, "checking_duplicates"))
    for index, (check, stage) in enumerate(stages):
        yield Progress(stage, 10.0 + 20.0 * index, text(lang, stage))
        for anomaly in check(contracts, rules, lang):
            found.append(anomaly)
            yield anomaly
    yield Progress("drawing_conclusions", 90.0, text(lang, "concluding", anomalies=count(len(found), lang)))
    yield from findings(contracts, found, lang)
    yield Progress("completed", 100.0, text(lang, "completed", contracts=count(len(contracts), lang),
                                            anomalies=count(len(found), lang)))


def unit_price(contract: Contract) -> float:
    return contract.value / contract.quantity if contract.quantity else contract.value


def price_outliers(contracts: Sequence[Contract], rules: Rules, lang: str = PT) -> Iterator[Anomaly]:
    by_item: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_category: dict[str, list[float]] = defaultdict(list)
    for contract in contracts:
        by_item[(contract.category, contract.item)].append(unit_price(contract))
        by_category[contract.category].append(unit_price(contract))
    baselines = {key: robust(prices) for key, prices in by_item.items() if len(prices) >= rules.min_peers}
    fallback = {key: robust(prices) for key, prices in by_category.items() if len(prices) >= rules.min_peers}
    for contract in contracts:
        baseline = baselines.get((contract.category, contract.item)) or fallback.get(contract.category)
        if baseline is not None:
            anomaly = price_check(contract, baseline, rules, lang)
            if anomaly is not None:
                yield anomaly


def robust(prices: list[float]) -> tuple[float, float, int]:
    """Median, scaled MAD and the number of peers."""
    median = statistics.median(prices)
    return median, 1.4826 * statistics.median(abs(p - median) for p in prices), len(prices)


def price_check(contract: Contract, baseline: tuple[float, float, int], rules: Rules,
                lang: str = PT) -> Anomaly | None:
    median, spread, peers = baseline
    price = unit_price(contract)
    ratio = price / median if median > 0 else 0.0
    z = (price - median) / spread if spread > 0 else float("inf")
    if ratio < rules.min_ratio or z < rules.z_threshold:
        return None
    expected = median * (contract.quantity or 1)
    excess = contract.value - expected
    severity: Severity = ("critical" if ratio >= 5 or excess >= 1_000_000 else
                          "high" if ratio >= 2.5 or excess >= 100_000 else "medium")
    description = text(lang, "price_outlier", percent=round((ratio - 1) * 100), peers=peers, item=contract.item)
    return Anomaly("price_outlier", severity, description, contract.contract_id, round(expected, 2),
                   contract.value, {"unit_price": round(price, 2), "median_unit_price": round(median, 2),
                                    "robust_z": round(z, 1) if z != float("inf") else None, "peers": peers,
                                    "agency": contract.agency, "supplier": contract.supplier, "item": contract.item})


def concentration(contracts: Sequence[Contract], rules: Rules, lang: str = PT) -> Iterator[Anomaly]:
    groups: dict[tuple[str, str], list[Contract]] = defaultdict(list)
    market: dict[str, set[str]] = defaultdict(set)
    for contract in contracts:
        groups[(contract.agency, contract.category)].append(contract)
        market[contract.category].add(contract.supplier)
    for (agency, category), group in groups.items():
        if len(group) < rules.min_group:
            continue
        spend: dict[str, float] = defaultdict(float)
        for contract in group:
            spend[contract.supplier] += contract.value
        total = sum(spend.values())
        supplier, top = max(spend.items(), key=lambda item: item[1])
        share = top / total
        if share >= rules.concentration_share:
            first = next(c for c in group if c.supplier == supplier)
            yield Anomaly("supplier_concentration", "high" if share >= 0.8 else "medium",
                          text(lang, "supplier_concentration", supplier=supplier, percent=round(share * 100),
                               agency=agency, category=category),
                          first.contract_id, round(total / max(len(market[category]), 2), 2), round(top, 2),
                          {"agency": agency, "category": category, "supplier": supplier, "share": round(share, 3),
                           "contracts": sum(c.supplier == supplier for c in group), "group_total": round(total, 2),
                           "hhi": round(sum((v / total) ** 2 for v in spend.values()), 3)})


def split_purchases(contracts: Sequence[Contract], rules: Rules, lang: str = PT) -> Iterator[Anomaly]:
    limit = rules.split_limit
    groups: dict[tuple[str, str, str], list[Contract]] = defaultdict(list)
    for contract in contracts:
        if 0.5 * limit <= contract.value < limit:
            groups[(contract.agency, contract.supplier, contract.item)].append(contract)
    for (agency, supplier, item), group in groups.items():
        group.sort(key=lambda c: c.date)
        start = 0
        while start < len(group):
            window = [c for c in group[start:] if (c.date - group[start].date).days <= rules.split_window_days]
            total = sum(c.value for c in window)
            if len(window) >= 3 and total > limit:
                severity: Severity = "critical" if total >= 5 * limit else "high" if total >= 2 * limit else "medium"
                yield Anomaly("split_purchase", severity,
                              text(lang, "split_purchase", parts=len(window), item=item, supplier=supplier,
                                   days=rules.split_window_days, total=brl(total, lang)), window[0].contract_id,
                              limit, round(total, 2), {"agency": agency, "supplier": supplier, "item": item,
                                                       "contract_ids": [c.contract_id for c in window],
                                                       "limit": limit})
                start += len(window)
            else:
                start += 1


def duplicates(contracts: Sequence[Contract], rules: Rules, lang: str = PT) -> Iterator[Anomaly]:
    seen: dict[tuple[str, str, str, float, str], list[Contract]] = defaultdict(list)
    for contract in contracts:
        seen[(contract.agency, contract.supplier, contract.item, round(contract.value, 2),
              contract.date.isoformat())].append(contract)
    for group in seen.values():
        ids = list(dict.fromkeys(c.contract_id for c in group))
        if len(ids) > 1:
            first = group[0]
            description = text(lang, "duplicate_contract", copies=len(ids), item=first.item, supplier=first.supplier,
                               date=first.date.isoformat())
            yield Anomaly("duplicate_contract", "high", description, first.contract_id, first.value,
                          round(first.value * len(ids), 2), {"contract_ids": ids, "agency": first.agency,
                                                             "supplier": first.supplier})


def findings(contracts: Sequence[Contract], found: list[Anomaly], lang: str = PT) -> Iterator[Finding]:
    """What the agents conclude: the overall picture, the worst case, and the pattern by kind."""
    excess = sum(max(a.actual_value - a.expected_value, 0) for a in found if a.kind == "price_outlier")
    severe = [a for a in found if a.severity in ("critical", "high")]
    yield Finding("zumbi", "Zumbi dos Palmares",
                  text(lang, "finding_zumbi", anomalies=count(len(found), lang), contracts=count(len(contracts), lang),
                       severe=count(len(severe), lang), excess=brl(excess, lang)), 0.9 if found else 0.6,
                  {"anomalies": len(found), "severe": len(severe), "estimated_overprice": round(excess, 2)})
    if not found:
        return
    worst = max(found, key=lambda a: (SEVERITY_ORDER[a.severity], a.actual_value - a.expected_value))
    yield Finding("anita", "Anita Garibaldi",
                  text(lang, "finding_anita", description=worst.description, contract=worst.contract_id,
                       actual=brl(worst.actual_value, lang), expected=brl(worst.expected_value, lang)), 0.85,
                  {"contract_id": worst.contract_id, "kind": worst.kind, "severity": worst.severity})
    kinds: dict[str, int] = defaultdict(int)
    for anomaly in found:
        kinds[anomaly.kind] += 1
    patterns = ", ".join(f"{kind_name(k, lang)}: {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    yield Finding("tiradentes", "Tiradentes", text(lang, "finding_tiradentes", patterns=patterns), 0.8,
                  {"by_kind": dict(kinds)})


SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
