"""What a chat message asks for: intents by keyword over the accent-folded text, first match wins."""
from __future__ import annotations

import re
import unicodedata

INTENTS = [  # more specific first: "o andamento da investigação" asks for progress, not a new one
    ("report", r"\b(relatorio\w*|resum\w*|report|summary|conclus\w*)\b"),
    ("explain", r"\b(anomalia\w*|expliq\w*|explica\w*|por que|suspeit\w*|evidencia\w*|explain|anomal\w*)\b"),
    ("progress", r"\b(andamento|progresso|status|como (esta|vai)|progress)\b"),
    ("investigate", r"\b(investig\w*|analis\w* (os |as )?contratos|apur\w*|audit\w*)\b"),
]


def fold(text: str) -> str:
    """Lower case without accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def intent(message: str) -> str | None:
    """The message's intent, or None for anything else."""
    folded = fold(message)
    return next((name for name, pattern in INTENTS if re.search(pattern, folded)), None)
