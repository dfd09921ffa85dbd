"""Where contracts come from when none are uploaded: the shipped sample, or the Portal da Transparência."""
from __future__ import annotations

import datetime
import functools
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from .model import Contract
from .query import ContractQuery, Vocabulary, parse
from .records import parse_csv
from .texts import PT, describe, text

SAMPLE = Path(__file__).parent / "data" / "sample_contracts.csv"
TRANSPARENCIA = "https://api.portaldatransparencia.gov.br/api-de-dados/contratos"
MAX_PAGES = 20


class SourceError(Exception):
    """The source could not be read: `key` names the text (`texts`), `fields` fill it; safe to show."""

    def __init__(self, key: str, **fields: Any) -> None:
        super().__init__(text(PT, key, **fields))
        self.key, self.fields = key, fields

    def text(self, lang: str) -> str:
        """The message in a language."""
        return text(lang, self.key, **self.fields)


class ContractSource(Protocol):
    name: str  # "sample", "transparencia"

    def interpret(self, query: str) -> ContractQuery:
        """The filters this source applies for a free-text request (Portuguese or English)."""

    async def search(self, query: str, limit: int) -> list[Contract]:
        """Contracts matching a free-text request, at most `limit`."""


@functools.cache
def sample_contracts(path: Path = SAMPLE) -> tuple[Contract, ...]:
    return tuple(parse_csv(path.read_text(encoding="utf-8"), 10_000_000))


@functools.cache
def sample_vocabulary() -> Vocabulary:
    """The sample's agencies, suppliers and categories with their aliases."""
    return Vocabulary(sample_contracts())


class SampleSource:
    """The shipped synthetic sample, filtered by what the request names (`query.parse`): agencies,
    suppliers, categories, a period, a value range. A request naming none gets every contract; one
    whose filters match nothing, or that names an agency the sample lacks, is a SourceError."""

    name = "sample"

    def interpret(self, query: str) -> ContractQuery:
        return parse(query, sample_vocabulary())

    async def search(self, query: str, limit: int) -> list[Contract]:
        wanted = self.interpret(query)
        if wanted.unknown_agency:
            known = sorted({c.agency for c in sample_contracts()})
            raise SourceError("error_unknown_agency", name=wanted.unknown_agency, known=", ".join(known))
        chosen = [c for c in sample_contracts() if wanted.matches(c)]
        if not chosen:
            raise NoMatch(wanted)
        return chosen[:limit]


class NoMatch(SourceError):
    """No contract passes the request's filters; the message says which filters they were."""

    def __init__(self, query: ContractQuery) -> None:
        self.filters = query.to_dict()
        super().__init__("error_no_match", filters=describe(self.filters, PT))

    def text(self, lang: str) -> str:
        return text(lang, self.key, filters=describe(self.filters, lang))


class TransparenciaSource:
    """The Portal da Transparência contracts API (needs a key: `TRANSPARENCIA_API_KEY`); the query
    is the agency's SIAFI code (codigoOrgao), the period the current year."""

    name = "transparencia"

    def __init__(self, api_key: str, session: aiohttp.ClientSession, url: str = TRANSPARENCIA) -> None:
        self.api_key, self.session, self.url = api_key, session, url

    def interpret(self, query: str) -> ContractQuery:
        code = "".join(ch for ch in query if ch.isdigit())
        return ContractQuery(codes=(code,) if code else ())

    async def search(self, query: str, limit: int) -> list[Contract]:
        codes = self.interpret(query).codes
        if not codes:
            raise SourceError("error_siafi_code")
        code = codes[0]
        year = datetime.date.today().year
        contracts: list[Contract] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"codigoOrgao": code, "dataInicial": f"01/01/{year}", "dataFinal": f"31/12/{year}",
                      "pagina": str(page)}
            items = await self._get(params)
            contracts += [c for c in map(to_contract, items) if c is not None]
            if not items or len(contracts) >= limit:
                break
        return contracts[:limit]

    async def _get(self, params: dict[str, str]) -> list[dict[str, Any]]:
        try:
            async with self.session.get(self.url, params=params, headers={"chave-api-dados": self.api_key},
                                        timeout=aiohttp.ClientTimeout(total=30)) as response:
                if response.status != 200:
                    raise SourceError("error_portal_status", status=response.status)
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SourceError("error_portal_down", error=type(exc).__name__) from None
        return body if isinstance(body, list) else []


def to_contract(item: dict[str, Any]) -> Contract | None:
    """One contract of the API's answer (fields as the API documents them), or None if incomplete."""
    try:
        supplier = item.get("fornecedor") or {}
        agency = (item.get("unidadeGestora") or {}).get("orgaoVinculado") or {}
        compra = item.get("compra") or {}
        return Contract(contract_id=str(item["numero"] or item["id"]), agency=str(agency.get("nome", "")),
                        supplier=str(supplier.get("nome", "")), item=str(item.get("objeto", ""))[:200],
                        category=str(compra.get("modalidadeCompra") or "contratos"),
                        value=float(item["valorInicialCompra"] or item["valorFinalCompra"]),
                        date=datetime.date.fromisoformat(str(item["dataAssinatura"])[:10]))
    except (KeyError, TypeError, ValueError):
        return None


def make_source(name: str, api_key: str | None, session: aiohttp.ClientSession | None) -> ContractSource:
    """The configured source: the sample, or the Portal da Transparência with its key."""
    if name == "transparencia":
        if not api_key or session is None:
            raise SourceError("error_api_key")
        return TransparenciaSource(api_key, session)
    return SampleSource()
