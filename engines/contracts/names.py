"""The names a request may give an agency or a category, in Portuguese and English, and the
normalisation they are compared under (lower case, accents dropped, spacing collapsed).

Every agency of the shipped sample has its official name, its English names and its usual acronym;
an agency outside this table is still matched by its own name.
"""
from __future__ import annotations

import re
import unicodedata

AGENCY_ALIASES: dict[str, tuple[str, ...]] = {
    "Ministério da Saúde": ("ministerio da saude", "ministry of health", "health ministry", "department of health",
                            "saude", "health"),
    "Ministério da Educação": ("ministerio da educacao", "ministry of education", "education ministry", "mec",
                               "educacao", "education"),
    "Ministério da Defesa": ("ministerio da defesa", "ministry of defence", "ministry of defense", "defence ministry",
                             "defense ministry", "defesa", "defence", "defense"),
    "Ministério da Justiça": ("ministerio da justica", "ministerio da justica e seguranca publica",
                              "ministry of justice", "ministry of justice and public security", "justice ministry",
                              "mjsp", "justica", "justice"),
    "Ministério do Meio Ambiente": ("ministerio do meio ambiente", "ministry of the environment",
                                    "ministry of environment", "environment ministry", "mma", "meio ambiente",
                                    "environment"),
    "Ministério da Fazenda": ("ministerio da fazenda", "ministry of finance", "finance ministry", "ministry of economy",
                              "treasury", "fazenda", "finance"),
    "Ministério dos Transportes": ("ministerio dos transportes", "ministerio do transporte", "ministry of transport",
                                   "ministry of transportation", "ministry of transports", "transport ministry",
                                   "transportes", "transport", "transportation"),
    "Ministério do Desenvolvimento Social": ("ministerio do desenvolvimento social", "ministry of social development",
                                             "social development ministry", "mds", "desenvolvimento social",
                                             "social development"),
}

CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "medicamentos": ("medicamentos", "medicamento", "remedios", "medicines", "medicine", "medications", "medication",
                     "drugs", "pharmaceuticals"),
    "equipamentos hospitalares": ("equipamentos hospitalares", "equipamento hospitalar", "hospital equipment",
                                  "medical equipment"),
    "informática": ("informatica", "tecnologia da informacao", "information technology", "computing", "computers",
                    "computer equipment"),
    "material de escritório": ("material de escritorio", "materiais de escritorio", "office supplies",
                               "office supply", "office material", "stationery"),
    "limpeza": ("limpeza", "servicos de limpeza", "cleaning", "cleaning services"),
    "veículos": ("veiculos", "veiculo", "viaturas", "vehicles", "vehicle", "cars"),
    "alimentação": ("alimentacao", "refeicoes", "food", "meals", "catering"),
}

LEGAL_SUFFIX = re.compile(r"\s+(ltda|sa|s a|eireli|me|epp)$")


def fold(text: str) -> str:
    """Lower case, no accents, one space between words: "Ministério  da Saúde" → "ministerio da saude"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return " ".join(plain.split())


def agency_aliases(name: str) -> set[str]:
    """What a request may call an agency: its folded name and the table's aliases."""
    return {fold(name), *AGENCY_ALIASES.get(name, ())}


def category_aliases(name: str) -> set[str]:
    """What a request may call a category: its folded name and the table's aliases."""
    return {fold(name), *CATEGORY_ALIASES.get(name, ())}


def supplier_aliases(name: str) -> set[str]:
    """A supplier's folded name, also without the sample's "(fictícia)" mark and a legal suffix (Ltda, SA)."""
    full = fold(name)
    bare = re.sub(r"\s*\(.*?\)\s*", " ", full).strip()
    short = LEGAL_SUFFIX.sub("", bare)
    return {alias for alias in (full, bare, short) if len(alias) >= 3}
