"""Where contracts come from when none are uploaded: the shipped sample, or the Portal da Transparência."""
from __future__ import annotations

import datetime
import functools
import unicodedata
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from .model import Contract
from .records import parse_csv

SAMPLE = Path(__file__).parent / "data" / "sample_contracts.csv"
TRANSPARENCIA = "https://api.portaldatransparencia.gov.br/api-de-dados/contratos"
MAX_PAGES = 20


class SourceError(Exception):
    """The source could not be read; the message is safe to show."""


class ContractSource(Protocol):
    name: str
    label: str

    async def search(self, query: str, limit: int) -> list[Contract]:
        """Contracts matching a free-text query (an agency, a category), at most `limit`."""


def fold(text: str) -> str:
    """Lower case without accents: "Saúde" → "saude"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


@functools.cache
def sample_contracts(path: Path = SAMPLE) -> tuple[Contract, ...]:
    return tuple(parse_csv(path.read_text(encoding="utf-8"), 10_000_000))


class SampleSource:
    """The shipped synthetic sample, filtered by the agencies or categories the query names."""

    name = "sample"
    label = "dados de exemplo sintéticos (gerados por engines/contracts/sample.py)"

    async def search(self, query: str, limit: int) -> list[Contract]:
        contracts = sample_contracts()
        words = set(fold(query).split())
        names = {fold(c.agency) for c in contracts} | {fold(c.category) for c in contracts}
        wanted = {name for name in names if set(name.split()) - STOP <= words and set(name.split()) - STOP}
        chosen = [c for c in contracts if fold(c.agency) in wanted or fold(c.category) in wanted]
        return (chosen or list(contracts))[:limit]


STOP = {"de", "da", "do", "dos", "das", "e", "ministerio"}


class TransparenciaSource:
    """The Portal da Transparência contracts API (needs a key: `TRANSPARENCIA_API_KEY`); the query
    is the agency's SIAFI code (codigoOrgao), the period the current year."""

    name = "transparencia"
    label = "Portal da Transparência (api-de-dados/contratos)"

    def __init__(self, api_key: str, session: aiohttp.ClientSession, url: str = TRANSPARENCIA) -> None:
        self.api_key, self.session, self.url = api_key, session, url

    async def search(self, query: str, limit: int) -> list[Contract]:
        code = "".join(ch for ch in query if ch.isdigit())
        if not code:
            raise SourceError("informe o código SIAFI do órgão (ex.: 36000 para o Ministério da Saúde)")
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
                    raise SourceError(f"Portal da Transparência respondeu {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SourceError(f"Portal da Transparência indisponível ({type(exc).__name__})") from None
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
            raise SourceError("CONTRACTS_SOURCE=transparencia precisa de TRANSPARENCIA_API_KEY")
        return TransparenciaSource(api_key, session)
    return SampleSource()
