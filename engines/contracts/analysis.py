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


def brl(value: float) -> str:
    """R$ 1.234,56"""
    return "R$ " + f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def count(value: int) -> str:
    """1.234"""
    return f"{value:,}".replace(",", ".")


def analyse(contracts: Sequence[Contract], rules: Rules = Rules()) -> Iterator[Step]:
    """Progress, anomalies as they are found, then findings; ends with Progress(..., 100)."""
    found: list[Anomaly] = []
    yield Progress("analyzing_contracts", 5.0, f"Analisando {count(len(contracts))} contratos...")
    stages = ((price_outliers, "checking_prices", "Comparando preços com contratos semelhantes..."),
              (concentration, "checking_concentration", "Verificando concentração de fornecedores..."),
              (split_purchases, "checking_split_purchases", "Procurando compras fracionadas..."),
              (duplicates, "checking_duplicates", "Procurando contratos duplicados..."))
    for index, (check, stage, message) in enumerate(stages):
        yield Progress(stage, 10.0 + 20.0 * index, message)
        for anomaly in check(contracts, rules):
            found.append(anomaly)
            yield anomaly
    yield Progress("drawing_conclusions", 90.0, f"{count(len(found))} anomalias encontradas; redigindo conclusões...")
    yield from findings(contracts, found)
    yield Progress("completed", 100.0, f"Análise concluída: {count(len(contracts))} contratos, "
                   f"{count(len(found))} anomalias")


def unit_price(contract: Contract) -> float:
    return contract.value / contract.quantity if contract.quantity else contract.value


def price_outliers(contracts: Sequence[Contract], rules: Rules) -> Iterator[Anomaly]:
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
            anomaly = price_check(contract, baseline, rules)
            if anomaly is not None:
                yield anomaly


def robust(prices: list[float]) -> tuple[float, float, int]:
    """Median, scaled MAD and the number of peers."""
    median = statistics.median(prices)
    return median, 1.4826 * statistics.median(abs(p - median) for p in prices), len(prices)


def price_check(contract: Contract, baseline: tuple[float, float, int], rules: Rules) -> Anomaly | None:
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
    return Anomaly("price_outlier", severity, f"Preço {round((ratio - 1) * 100)}% acima da mediana de {peers} "
                   f"contratos semelhantes ({contract.item})", contract.contract_id, round(expected, 2),
                   contract.value, {"unit_price": round(price, 2), "median_unit_price": round(median, 2),
                                    "robust_z": round(z, 1) if z != float("inf") else None, "peers": peers,
                                    "agency": contract.agency, "supplier": contract.supplier, "item": contract.item})


def concentration(contracts: Sequence[Contract], rules: Rules) -> Iterator[Anomaly]:
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
                          f"{supplier} concentra {round(share * 100)}% dos gastos de {agency} em {category}",
                          first.contract_id, round(total / max(len(market[category]), 2), 2), round(top, 2),
                          {"agency": agency, "category": category, "supplier": supplier, "share": round(share, 3),
                           "contracts": sum(c.supplier == supplier for c in group), "group_total": round(total, 2),
                           "hhi": round(sum((v / total) ** 2 for v in spend.values()), 3)})


def split_purchases(contracts: Sequence[Contract], rules: Rules) -> Iterator[Anomaly]:
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
                              f"{len(window)} compras de {item} a {supplier} em {rules.split_window_days} dias, "
                              f"cada uma abaixo do limite de dispensa, somam {brl(total)}", window[0].contract_id,
                              limit, round(total, 2), {"agency": agency, "supplier": supplier, "item": item,
                                                       "contract_ids": [c.contract_id for c in window],
                                                       "limit": limit})
                start += len(window)
            else:
                start += 1


def duplicates(contracts: Sequence[Contract], rules: Rules) -> Iterator[Anomaly]:
    seen: dict[tuple[str, str, str, float, str], list[Contract]] = defaultdict(list)
    for contract in contracts:
        seen[(contract.agency, contract.supplier, contract.item, round(contract.value, 2),
              contract.date.isoformat())].append(contract)
    for group in seen.values():
        ids = list(dict.fromkeys(c.contract_id for c in group))
        if len(ids) > 1:
            first = group[0]
            yield Anomaly("duplicate_contract", "high", f"{len(ids)} contratos idênticos de {first.item} com "
                          f"{first.supplier} em {first.date.isoformat()}", first.contract_id, first.value,
                          round(first.value * len(ids), 2), {"contract_ids": ids, "agency": first.agency,
                                                             "supplier": first.supplier})


def findings(contracts: Sequence[Contract], found: list[Anomaly]) -> Iterator[Finding]:
    """What the agents conclude: the overall picture, the worst case, and the pattern by kind."""
    excess = sum(max(a.actual_value - a.expected_value, 0) for a in found if a.kind == "price_outlier")
    severe = [a for a in found if a.severity in ("critical", "high")]
    yield Finding("zumbi", "Zumbi dos Palmares",
                  f"{count(len(found))} anomalias em {count(len(contracts))} contratos ({count(len(severe))} graves); "
                  f"sobrepreço estimado de {brl(excess)}", 0.9 if found else 0.6,
                  {"anomalies": len(found), "severe": len(severe), "estimated_overprice": round(excess, 2)})
    if not found:
        return
    worst = max(found, key=lambda a: (SEVERITY_ORDER[a.severity], a.actual_value - a.expected_value))
    yield Finding("anita", "Anita Garibaldi", f"Caso mais grave: {worst.description} (contrato {worst.contract_id}: "
                  f"{brl(worst.actual_value)} contra {brl(worst.expected_value)} esperados)", 0.85,
                  {"contract_id": worst.contract_id, "kind": worst.kind, "severity": worst.severity})
    kinds: dict[str, int] = defaultdict(int)
    for anomaly in found:
        kinds[anomaly.kind] += 1
    summary = ", ".join(f"{KIND_NAMES[k]}: {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    yield Finding("tiradentes", "Tiradentes", f"Padrões encontrados — {summary}", 0.8, {"by_kind": dict(kinds)})


SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
KIND_NAMES = {"price_outlier": "preços fora do padrão", "supplier_concentration": "concentração de fornecedor",
              "split_purchase": "compras fracionadas", "duplicate_contract": "contratos duplicados"}
