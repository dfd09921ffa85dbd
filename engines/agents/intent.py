"""What a chat message asks for, in Portuguese or English: intents by keyword over the folded text
(lower case, no accents), first match wins. What it asks about (agency, supplier, period, values) is
`engines.contracts.query`'s business."""
from __future__ import annotations

import re

from engines.contracts.names import fold

INTENTS = [  # more specific first: "o andamento da investigação" asks for progress, not a new one
    ("summarise", r"\b(relatorio\w*|resum\w*|sintese|conclus\w*|report\w*|summar\w*|sum up|conclusions?|findings)\b"),
    ("explain", r"\b(anomalia\w*|expliq\w*|explica\w*|por ?que|suspeit\w*|evidencia\w*|irregular\w*|explain\w*|"
                r"anomal\w*|why|suspicious|suspect\w*|evidence|red flags?)\b"),
    ("progress", r"\b(andamento|progresso|status|como (esta|vai)|ja terminou|progress|how far|still running|"
                 r"how('?s| is) (it|the \w+) going|is it (done|finished|ready))\b"),
    ("investigate", r"\b(investig\w*|analis\w* (os |as )?contratos|apur\w*|audit\w*|verifi\w* (os )?contratos|"
                    r"analy[sz]e\w*|look into|check (the )?contracts|examine\w*)\b"),
    ("help", r"\b(ajuda\w*|help|o que (voce )?(pode|sabe) fazer|como funciona|what can you do|how does (it|this) "
             r"work|what do you do)\b"),
]


def intent(message: str) -> str | None:
    """The message's intent (summarise, explain, progress, investigate, help), or None for anything else."""
    folded = fold(message)
    return next((name for name, pattern in INTENTS if re.search(pattern, folded)), None)
