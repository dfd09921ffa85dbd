"""Which language a chat message is in, Portuguese or English, and so which language to answer in.

The detector is Lingua (`lingua-language-detector`): its n-gram models ship inside the package and run
offline, it is built for short texts such as chat messages, and restricted to Portuguese and English
with preloaded models it decides a message in well under a millisecond. It runs in low-accuracy mode
(trigram models only): about 11 MB and 0.04 s to load instead of about 70 MB and 0.4 s per process, and
on two languages, with names and numbers set aside first, the tests' phrases come out the same.

Names say nothing about the writer's language ("Investigate the Ministério da Saúde" is English), so
agency and category aliases, capitalised names inside a sentence, text in brackets, numbers, amounts
and investigation ids are taken out before detection. A message with fewer than MIN_WORDS words left,
or one the detector is unsure of, keeps the session's language: that of its latest message that was
long enough; a session with none takes the detector's answer if it is very sure, else Portuguese.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterable

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from engines.contracts.names import AGENCY_ALIASES, CATEGORY_ALIASES
from engines.contracts.texts import EN, PT

MIN_WORDS = 3
MIN_CONFIDENCE = 0.6
SURE = 0.9  # for a short first message
CODES = {Language.PORTUGUESE: PT, Language.ENGLISH: EN}
NOISE = re.compile(r"\([^)]*\)|\bINV-\d{4}-\w+|R\$|\S*\d\S*|https?://\S+", re.IGNORECASE)
INNER_NAME = re.compile(r"(?<=[^\s.!?:;\"“(])(\s+)[A-ZÀ-Ý][\w'’-]*")
WORD = re.compile(r"[^\W\d_]+")


@functools.cache
def detector() -> LanguageDetector:
    """Lingua, for Portuguese and English only, trigram models loaded once."""
    return (LanguageDetectorBuilder.from_languages(Language.PORTUGUESE, Language.ENGLISH)
            .with_preloaded_language_models().with_low_accuracy_mode().build())


def load() -> None:
    """Load the models and patterns now (they hold the GIL while loading): at start-up, not on a first message."""
    detector()
    alias_pattern()


@functools.cache
def alias_pattern() -> re.Pattern[str]:
    """Every agency and category alias (folded), longest first, as whole words."""
    aliases = sorted({a for table in (AGENCY_ALIASES, CATEGORY_ALIASES) for names in table.values() for a in names},
                     key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in aliases) + r")(?!\w)")


def words_of(message: str) -> str:
    """The message without names, numbers and ids: the words that tell its language."""
    plain = "".join(unicodedata.normalize("NFKD", c.lower())[:1] for c in message)  # one character for each
    for match in alias_pattern().finditer(plain):
        message = message[:match.start()] + " " * (match.end() - match.start()) + message[match.end():]
    message = NOISE.sub(" ", message)
    return INNER_NAME.sub(" ", message) if message != message.upper() else message.lower()  # all capitals: no names


def detect(message: str, min_words: int = MIN_WORDS, min_confidence: float = MIN_CONFIDENCE) -> str | None:
    """"pt" or "en" when the message has enough words and the detector is sure enough, else None."""
    text = words_of(message)
    if len(WORD.findall(text)) < min_words:
        return None
    best = detector().compute_language_confidence_values(text)[0]
    return CODES[best.language] if best.value >= min_confidence else None


def session_language(message: str, earlier: Iterable[str] = ()) -> str:
    """The language to answer `message` in; `earlier` are the session's previous user messages, oldest first."""
    for text in (message, *reversed(list(earlier))):
        found = detect(text)
        if found:
            return found
    return detect(message, min_words=1, min_confidence=SURE) or PT
