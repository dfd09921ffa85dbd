"""The shipped SYNTHETIC contracts sample, with anomalies planted on purpose.

    python -m engines.contracts.sample [--seed 2026] [--count 5000] [--out engines/contracts/data]

Writes `sample_contracts.csv` and `planted.json` (what was planted, with the severity the documented
rules give it). Agencies are real names of Brazilian federal bodies; suppliers, contracts and values
are invented. Deterministic for a seed.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import random
from pathlib import Path
from typing import Any

from .analysis import DIRECT_PURCHASE_LIMIT

DATA = Path(__file__).parent / "data"
AGENCIES = ["Ministério da Saúde", "Ministério da Educação", "Ministério da Defesa", "Ministério da Justiça",
            "Ministério do Meio Ambiente", "Ministério da Fazenda", "Ministério dos Transportes",
            "Ministério do Desenvolvimento Social"]
CATALOGUE = {  # category → item → unit price (BRL), quantity range
    "medicamentos": {"Dipirona 500mg (caixa)": (12.0, 100, 900), "Insulina NPH (frasco)": (25.0, 100, 900),
                     "Amoxicilina 500mg (caixa)": (18.0, 100, 900)},
    "equipamentos hospitalares": {"Monitor multiparamétrico": (18_000.0, 1, 6), "Cama hospitalar": (6_500.0, 1, 8)},
    "informática": {"Notebook": (4_500.0, 1, 10), "Monitor 24 polegadas": (900.0, 2, 25),
                    "Licença de software de escritório": (450.0, 5, 60)},
    "material de escritório": {"Resma de papel A4": (28.0, 20, 400), "Caneta esferográfica (caixa)": (22.0, 10, 200)},
    "limpeza": {"Serviço de limpeza (mês)": (95_000.0, 1, 1)},
    "veículos": {"Ambulância tipo B": (280_000.0, 1, 2), "Veículo utilitário": (120_000.0, 1, 2)},
    "alimentação": {"Cesta básica": (180.0, 20, 200), "Refeição hospitalar": (15.0, 200, 2000)},
}
SUPPLIERS = [f"{name} (fictícia)" for name in (
    "Alfa Comércio Ltda", "Beta Suprimentos SA", "Gama Distribuidora", "Delta Serviços Ltda", "Épsilon Tech",
    "Zeta Hospitalar", "Eta Papelaria", "Teta Alimentos", "Iota Veículos", "Kapa Farma", "Lambda Soluções",
    "Mi Atacado", "Ni Logística", "Ômicron Médica", "Pi Informática", "Rô Limpeza", "Sigma Comercial",
    "Tau Equipamentos", "Ípsilon Distribuição", "Ômega Serviços")]


def generate(seed: int = 2026, count: int = 5000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clean contracts plus planted anomalies; the rows and what was planted."""
    rng = random.Random(seed)
    rows = [clean(rng, n) for n in range(count)]
    planted: list[dict[str, Any]] = []
    plant_prices(rng, rows, planted)
    plant_concentration(rng, rows, planted)
    plant_splits(rows, planted)
    plant_duplicates(rows, planted)
    return rows, planted


def clean(rng: random.Random, n: int) -> dict[str, Any]:
    category = rng.choice(list(CATALOGUE))
    item, (price, low, high) = rng.choice(list(CATALOGUE[category].items()))
    quantity = rng.randint(low, high)
    unit = price * rng.lognormvariate(0, 0.12)
    date = datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(365))
    return {"contract_id": f"CT-2025-{n + 1:06d}", "agency": rng.choice(AGENCIES), "supplier": rng.choice(SUPPLIERS),
            "item": item, "category": category, "value": round(unit * quantity, 2), "date": date.isoformat(),
            "quantity": quantity}


def plant_prices(rng: random.Random, rows: list[dict[str, Any]], planted: list[dict[str, Any]]) -> None:
    """Overpriced contracts, on cheap items (so that the excess in BRL does not raise the severity):
    ×1.9 and ×2 (medium), ×3.5 and ×4 (high), ×8 and ×12 (critical)."""
    cheap = [row for row in rows[:2000] if row["value"] < 5_000]
    for n, (factor, severity) in enumerate([(1.9, "medium"), (2.0, "medium"), (3.5, "high"), (4.0, "high"),
                                            (8.0, "critical"), (12.0, "critical")]):
        row = cheap[10 + n * 29]
        row["value"] = round(row["value"] * factor, 2)
        planted.append({"kind": "price_outlier", "contract_ids": [row["contract_id"]], "severity": severity})


def plant_concentration(rng: random.Random, rows: list[dict[str, Any]], planted: list[dict[str, Any]]) -> None:
    """Ministério da Saúde buys almost all its cleaning services from one supplier."""
    group = [r for r in rows if r["agency"] == "Ministério da Saúde" and r["category"] == "limpeza"]
    for row in group[: int(len(group) * 0.9)]:
        row["supplier"] = SUPPLIERS[15]
    planted.append({"kind": "supplier_concentration", "contract_ids": [group[0]["contract_id"]], "severity": "high",
                    "agency": "Ministério da Saúde", "category": "limpeza", "supplier": SUPPLIERS[15]})


def plant_splits(rows: list[dict[str, Any]], planted: list[dict[str, Any]]) -> None:
    """Purchases split to stay under the direct-purchase limit: 3 × 55 mil (high) and 6 × 58 mil (critical)."""
    for parts, value, severity, start in ((3, 0.88, "high", "2025-03-03"), (6, 0.93, "critical", "2025-08-04")):
        first = len(rows)
        for n in range(parts):
            date = datetime.date.fromisoformat(start) + datetime.timedelta(days=4 * n)
            rows.append({"contract_id": f"CT-2025-9{first + n:05d}", "agency": "Ministério da Educação",
                         "supplier": SUPPLIERS[14], "item": "Notebook", "category": "informática",
                         "value": round(DIRECT_PURCHASE_LIMIT * value, 2), "date": date.isoformat(),
                         "quantity": 12 + n % 2})
        planted.append({"kind": "split_purchase", "contract_ids": [rows[first]["contract_id"]], "severity": severity})


def plant_duplicates(rows: list[dict[str, Any]], planted: list[dict[str, Any]]) -> None:
    """The same contract registered twice under another id."""
    for n in (400, 1400):
        twin = {**rows[n], "contract_id": rows[n]["contract_id"] + "-B"}
        rows.append(twin)
        planted.append({"kind": "duplicate_contract", "contract_ids": [rows[n]["contract_id"]], "severity": "high"})


def write(out: Path, seed: int, count: int) -> None:
    rows, planted = generate(seed, count)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sample_contracts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    manifest = {"synthetic": True, "seed": seed, "count": len(rows),
                "generator": "python -m engines.contracts.sample", "planted": planted}
    (out / "planted.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the synthetic contracts sample.")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    write(args.out, args.seed, args.count)
