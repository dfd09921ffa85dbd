"""Every text the contracts engine and its investigations show people, one table per language:
Portuguese (the default) and English. Templates take `str.format` fields."""
from __future__ import annotations

import datetime
from typing import Any

PT, EN = "pt", "en"
LANGUAGES = (PT, EN)

PT_TEXTS = {
    "queued": "Na fila",
    "loading": "Buscando contratos em {source}...",
    "analysing": "Analisando {contracts} contratos...",
    "checking_prices": "Comparando preços com contratos semelhantes...",
    "checking_concentration": "Verificando concentração de fornecedores...",
    "checking_split_purchases": "Procurando compras fracionadas...",
    "checking_duplicates": "Procurando contratos duplicados...",
    "concluding": "{anomalies} anomalias encontradas; redigindo conclusões...",
    "completed": "Análise concluída: {contracts} contratos, {anomalies} anomalias",
    "price_outlier": "Preço {percent}% acima da mediana de {peers} contratos semelhantes ({item})",
    "supplier_concentration": "{supplier} concentra {percent}% dos gastos de {agency} em {category}",
    "split_purchase": "{parts} compras de {item} a {supplier} em {days} dias, cada uma abaixo do limite de dispensa, "
                      "somam {total}",
    "duplicate_contract": "{copies} contratos idênticos de {item} com {supplier} em {date}",
    "finding_zumbi": "{anomalies} anomalias em {contracts} contratos ({severe} graves); sobrepreço estimado de "
                     "{excess}",
    "finding_anita": "Caso mais grave: {description} (contrato {contract}: {actual} contra {expected} esperados)",
    "finding_tiradentes": "Padrões encontrados — {patterns}",
    "source_sample": "dados de exemplo sintéticos, gerados para demonstração com anomalias plantadas de propósito "
                     "(engines/contracts/sample.py)",
    "source_transparencia": "Portal da Transparência do Governo Federal (api-de-dados/contratos)",
    "source_upload": "contratos enviados",
    "restarted": "Recomeçando a análise (tentativa {attempt}): o processo que a executava parou",
    "error_restarted": "o servidor foi reiniciado durante a análise",
    "error_worker_lost": "os processos que executavam esta análise pararam",
    "error_upload_gone": "os contratos enviados não estão mais guardados",
    "error_internal": "erro interno durante a análise",
    "error_not_stored": "os contratos ou o relatório não puderam ser guardados (banco de dados indisponível)",
    "error_no_source": "nenhuma fonte de contratos configurada",
    "error_siafi_code": "informe o código SIAFI do órgão (ex.: 36000 para o Ministério da Saúde)",
    "error_portal_status": "Portal da Transparência respondeu {status}",
    "error_portal_down": "Portal da Transparência indisponível ({error})",
    "error_api_key": "CONTRACTS_SOURCE=transparencia precisa de TRANSPARENCIA_API_KEY",
    "error_unknown_agency": "o órgão \"{name}\" não está nos dados de exemplo; órgãos disponíveis: {known}",
    "error_no_match": "nenhum contrato dos dados de exemplo corresponde ao pedido ({filters})",
    "filter_agencies": "órgão {names}", "filter_suppliers": "fornecedor {names}",
    "filter_categories": "categoria {names}", "filter_codes": "código SIAFI {names}",
    "filter_unknown_agency": "órgão não reconhecido \"{names}\"",
    "filter_period": "período de {start} a {end}", "filter_since": "a partir de {start}",
    "filter_until": "até {end}", "filter_months": "meses de {first} a {last}",
    "filter_min": "valor a partir de {value}", "filter_max": "valor até {value}", "or": " ou ",
    "report_investigation": "Investigação", "report_source": "Fonte dos dados",
    "report_contracts": "Contratos analisados",
    "report_anomalies": "Anomalias", "report_none": "nenhuma", "report_findings": "Conclusões",
    "report_method": "Metodologia", "report_columns": "gravidade|tipo|contrato|esperado|encontrado|descrição",
    "report_contracts_word": "contratos", "report_anomalies_word": "anomalias", "report_html_lang": "pt-BR",
}

EN_TEXTS = {
    "queued": "Queued",
    "loading": "Fetching contracts from {source}...",
    "analysing": "Analysing {contracts} contracts...",
    "checking_prices": "Comparing prices with similar contracts...",
    "checking_concentration": "Checking supplier concentration...",
    "checking_split_purchases": "Looking for split purchases...",
    "checking_duplicates": "Looking for duplicate contracts...",
    "concluding": "{anomalies} anomalies found; drawing conclusions...",
    "completed": "Analysis complete: {contracts} contracts, {anomalies} anomalies",
    "price_outlier": "Price {percent}% above the median of {peers} similar contracts ({item})",
    "supplier_concentration": "{supplier} holds {percent}% of the spending of {agency} on {category}",
    "split_purchase": "{parts} purchases of {item} from {supplier} within {days} days, each below the direct-purchase "
                      "limit, add up to {total}",
    "duplicate_contract": "{copies} identical contracts for {item} with {supplier} on {date}",
    "finding_zumbi": "{anomalies} anomalies in {contracts} contracts ({severe} severe); estimated overpricing of "
                     "{excess}",
    "finding_anita": "Most serious case: {description} (contract {contract}: {actual} against {expected} expected)",
    "finding_tiradentes": "Patterns found — {patterns}",
    "source_sample": "synthetic sample data, generated for demonstration with anomalies planted on purpose "
                     "(engines/contracts/sample.py)",
    "source_transparencia": "the Brazilian Federal Government's Portal da Transparência (api-de-dados/contratos)",
    "source_upload": "uploaded contracts",
    "restarted": "Starting the analysis over (attempt {attempt}): the process running it stopped",
    "error_restarted": "the server restarted during the analysis",
    "error_worker_lost": "the processes running this analysis stopped",
    "error_upload_gone": "the uploaded contracts are no longer kept",
    "error_internal": "internal error during the analysis",
    "error_not_stored": "the contracts or the report could not be stored (the database is unavailable)",
    "error_no_source": "no contracts source is configured",
    "error_siafi_code": "give the agency's SIAFI code (e.g. 36000 for the Ministério da Saúde, the Ministry of Health)",
    "error_portal_status": "the Portal da Transparência answered {status}",
    "error_portal_down": "the Portal da Transparência is unavailable ({error})",
    "error_api_key": "CONTRACTS_SOURCE=transparencia needs TRANSPARENCIA_API_KEY",
    "error_unknown_agency": "the agency \"{name}\" is not in the sample data; agencies available: {known}",
    "error_no_match": "no contract in the sample data matches the request ({filters})",
    "filter_agencies": "agency {names}", "filter_suppliers": "supplier {names}",
    "filter_categories": "category {names}", "filter_codes": "SIAFI code {names}",
    "filter_unknown_agency": "unknown agency \"{names}\"",
    "filter_period": "period {start} to {end}", "filter_since": "from {start}",
    "filter_until": "until {end}", "filter_months": "months {first} to {last}",
    "filter_min": "value from {value}", "filter_max": "value up to {value}", "or": " or ",
    "report_investigation": "Investigation", "report_source": "Data source",
    "report_contracts": "Contracts analysed",
    "report_anomalies": "Anomalies", "report_none": "none", "report_findings": "Findings",
    "report_method": "Methodology", "report_columns": "severity|kind|contract|expected|found|description",
    "report_contracts_word": "contracts", "report_anomalies_word": "anomalies", "report_html_lang": "en",
}

TEXTS = {PT: PT_TEXTS, EN: EN_TEXTS}
KIND_NAMES = {
    PT: {"price_outlier": "preços fora do padrão", "supplier_concentration": "concentração de fornecedor",
         "split_purchase": "compras fracionadas", "duplicate_contract": "contratos duplicados"},
    EN: {"price_outlier": "prices out of line", "supplier_concentration": "supplier concentration",
         "split_purchase": "split purchases", "duplicate_contract": "duplicate contracts"},
}
SEVERITY_NAMES = {PT: {"low": "baixa", "medium": "média", "high": "alta", "critical": "crítica"},
                  EN: {"low": "low", "medium": "medium", "high": "high", "critical": "critical"}}
MONTH_NAMES = {PT: ("janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro "
                    "dezembro").split(),
               EN: "January February March April May June July August September October November December".split()}
METHOD = {
    PT: ["Preço: preço unitário comparado à mediana de contratos do mesmo item (ou categoria), com desvio "
         "robusto (1,4826 × MAD); alerta com z ≥ 3,5 e preço ≥ 1,5× a mediana.",
         "Concentração: fornecedor com ≥ 60% dos gastos de um órgão numa categoria (≥ 10 contratos).",
         "Fracionamento: ≥ 3 compras do mesmo item ao mesmo fornecedor em 30 dias, cada uma entre 50% e 100% "
         "do limite de dispensa (Lei 14.133/2021, art. 75, II), somando acima dele.",
         "Duplicidade: contratos com ids diferentes e mesmos órgão, fornecedor, item, valor e data."],
    EN: ["Price: unit price against the median of contracts for the same item (or category), with a robust "
         "spread (1.4826 × MAD); flagged at z ≥ 3.5 and a price ≥ 1.5× the median.",
         "Concentration: a supplier with ≥ 60% of an agency's spending in a category (≥ 10 contracts).",
         "Split purchase: ≥ 3 purchases of the same item from the same supplier within 30 days, each between 50% "
         "and 100% of the direct-purchase limit (Lei 14.133/2021, art. 75, II), together above it.",
         "Duplicate: contracts with different ids and the same agency, supplier, item, value and date."],
}


def language(value: Any) -> str:
    """A supported language code; anything else is Portuguese, the default."""
    return value if value in LANGUAGES else PT


def text(lang: str, key: str, **fields: Any) -> str:
    """The text `key` in a language, its fields filled in."""
    return TEXTS[language(lang)][key].format(**fields)


def kind_name(kind: str, lang: str) -> str:
    return KIND_NAMES[language(lang)].get(kind, kind)


def severity_name(severity: str, lang: str) -> str:
    return SEVERITY_NAMES[language(lang)].get(severity, severity)


def source_label(source: str | None, lang: str) -> str | None:
    """What a source ("sample", "transparencia", "upload") is called, or None for none."""
    key = f"source_{source}"
    return text(lang, key) if key in PT_TEXTS else source


def brl(value: float, lang: str = PT) -> str:
    """R$ 1.234,56 (Portuguese) or R$ 1,234.56 (English)."""
    plain = f"{value:,.2f}"
    return "R$ " + (plain if language(lang) == EN else plain.replace(",", "_").replace(".", ",").replace("_", "."))


def count(value: int, lang: str = PT) -> str:
    """1.234 (Portuguese) or 1,234 (English)."""
    plain = f"{value:,}"
    return plain if language(lang) == EN else plain.replace(",", ".")


def day(value: str, lang: str) -> str:
    """An ISO date as people of the language write it: 01/03/2025 or 2025-03-01."""
    return value if language(lang) == EN else datetime.date.fromisoformat(value).strftime("%d/%m/%Y")


def describe(filters: dict[str, Any], lang: str) -> str:
    """The filters of a query (`ContractQuery.to_dict()`) in words; "" when there are none."""
    return "; ".join(named(filters, lang) + period(filters, lang) + value_range(filters, lang))


def named(filters: dict[str, Any], lang: str) -> list[str]:
    """Agencies, suppliers, categories, codes and an agency not recognised."""
    keys = ("agencies", "suppliers", "categories", "codes")
    parts = [text(lang, f"filter_{key}", names=text(lang, "or").join(filters[key])) for key in keys if filters.get(key)]
    if filters.get("unknown_agency"):
        parts.append(text(lang, "filter_unknown_agency", names=filters["unknown_agency"]))
    return parts


def period(filters: dict[str, Any], lang: str) -> list[str]:
    """The dates and the month range."""
    start, end = (day(filters[key], lang) if filters.get(key) else None for key in ("start", "end"))
    parts = [text(lang, "filter_period", start=start, end=end) if start and end else
             text(lang, "filter_since", start=start) if start else text(lang, "filter_until", end=end)
             ] if start or end else []
    if filters.get("months"):
        first, last = (MONTH_NAMES[language(lang)][m - 1] for m in filters["months"])
        parts.append(text(lang, "filter_months", first=first, last=last))
    return parts


def value_range(filters: dict[str, Any], lang: str) -> list[str]:
    """The lowest and highest value."""
    return [text(lang, f"filter_{key}", value=brl(filters[f"{key}_value"], lang))
            for key in ("min", "max") if filters.get(f"{key}_value") is not None]
