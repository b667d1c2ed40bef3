"""Name normalisation and the exact name keys used for person matching.

Why: persons are matched across countries by hashing (OPRF) names with a date of birth. The
same woman is "Müller-Lüdenscheidt, Anna" in one system, "MUELLER LUEDENSCHEIDT ANNA" in an MRZ
and "MULLER LUDENSCHEIDT" in a third. Fuzzy matching is not available under the OPRF, so
instead each side derives a small, fixed set of *exact* variants and a hit on any of them counts.

The rules (ICAO Doc 9303 Part 3 transliteration as the basis; ``docs/normalisation.md``):

* Primary rule: diacritics are removed (Ä→A, Ñ→N, Ü→U, Å→A); letters without a decomposition
  follow the ICAO table (Æ→AE, Ø→OE, Œ→OE, ß→SS, Þ→TH, Ð/Đ→D, Ł→L...). The alternative ICAO
  spellings Ä→AE, Ö→OE, Ü→UE, Å→AA are produced only as *variants* by :func:`name_variants`.
* Cyrillic, Greek and Arabic(-script) letters are transliterated from partial tables; letters
  of any other script raise :class:`crypto.errors.NormalisationError` rather than vanish (a name
  reduced to nothing would match every other such name).
* Apostrophes are removed (O'NEILL → ONEILL, as in the MRZ); every other non-letter (hyphens,
  ``<`` fillers, commas, digits) becomes a space; spaces are collapsed.

Invariants: output is ``[A-Z]+( [A-Z]+)*`` or empty; :func:`normalise_name` is idempotent;
:func:`name_variants` is deterministic, sorted, and returns at most 8 keys. Any change to a rule
changes :data:`TRANSLITERATION_VERSION`, which must be bound into the OPRF context.
"""

from __future__ import annotations

import unicodedata

from crypto.errors import NormalisationError

TRANSLITERATION_VERSION = "names-1"

MAX_VARIANTS = 8

_APOSTROPHES = frozenset("'\u2018\u2019\u02bc\u02bb`\u00b4\u00b7")

# The ICAO alternative spellings, applied only when building variants.
_EXPANDED = str.maketrans(
    {"Ä": "AE", "ä": "ae", "Ö": "OE", "ö": "oe", "Ü": "UE", "ü": "ue", "Å": "AA", "å": "aa"}
)

# Latin letters with no Unicode decomposition (upper case; input is upper-cased first).
_LATIN = {
    "Æ": "AE", "Œ": "OE", "Ø": "OE", "ẞ": "SS", "Þ": "TH", "Ð": "D", "Đ": "D", "Ł": "L",
    "Ħ": "H", "Ŋ": "N", "Ŧ": "T", "Ǝ": "E", "Ə": "E", "Ɛ": "E", "Ɔ": "O", "Ɓ": "B",
    "Ɗ": "D", "Ƙ": "K", "Ƴ": "Y", "Ƒ": "F", "Ɲ": "N",
}  # fmt: skip

# Cyrillic (Russian, Ukrainian, Belarusian, Serbian, Macedonian core letters), partial.
# Letters with a diacritic (Й, Ё, Ї, Ў, Ѓ, Ќ) reach this table without it.
_CYRILLIC = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Е": "E", "Ж": "ZH", "З": "Z",
    "И": "I", "К": "K", "Л": "L", "М": "M", "Н": "N", "О": "O", "П": "P", "Р": "R",
    "С": "S", "Т": "T", "У": "U", "Ф": "F", "Х": "KH", "Ц": "TS", "Ч": "CH", "Ш": "SH",
    "Щ": "SHCH", "Ъ": "IE", "Ы": "Y", "Ь": "", "Э": "E", "Ю": "IU", "Я": "IA", "Є": "IE",
    "І": "I", "Ґ": "G", "Ђ": "D", "Ј": "J", "Љ": "LJ", "Њ": "NJ", "Ћ": "C", "Џ": "DZ",
    "Ѕ": "DZ",
}  # fmt: skip

# Greek, letter by letter, plus the digraph ΟΥ → OU handled before this table. Partial.
_GREEK = {
    "Α": "A", "Β": "V", "Γ": "G", "Δ": "D", "Ε": "E", "Ζ": "Z", "Η": "I", "Θ": "TH",
    "Ι": "I", "Κ": "K", "Λ": "L", "Μ": "M", "Ν": "N", "Ξ": "X", "Ο": "O", "Π": "P",
    "Ρ": "R", "Σ": "S", "Τ": "T", "Υ": "Y", "Φ": "F", "Χ": "CH", "Ψ": "PS", "Ω": "O",
}  # fmt: skip

# Arabic script (Arabic, Persian, Urdu and Pashto letters), consonantal and partial: short
# vowels are not written, so the result rarely equals the passport spelling. Hamza forms reach
# this table as their carrier letter.
_ARABIC = {
    "ا": "A", "ٱ": "A", "ب": "B", "ت": "T", "ث": "TH", "ج": "J", "ح": "H", "خ": "KH",
    "د": "D", "ذ": "DH", "ر": "R", "ز": "Z", "س": "S", "ش": "SH", "ص": "S", "ض": "D",
    "ط": "T", "ظ": "Z", "ع": "A", "غ": "GH", "ف": "F", "ق": "Q", "ك": "K", "ل": "L",
    "م": "M", "ن": "N", "ه": "H", "و": "W", "ي": "Y", "ى": "A", "ة": "A", "ء": "",
    "پ": "P", "چ": "CH", "ژ": "ZH", "گ": "G", "ک": "K", "ی": "Y", "ٹ": "T", "ڈ": "D",
    "ڑ": "R", "ں": "N", "ہ": "H", "ھ": "H", "ۀ": "H", "ے": "Y", "ۍ": "Y", "ې": "E",
    "ټ": "T", "ډ": "D", "ړ": "R", "ږ": "ZH", "ښ": "SH", "ځ": "DZ", "څ": "TS", "ګ": "G",
    "ڼ": "N",
}  # fmt: skip

_LETTERS: dict[str, str] = {**_LATIN, **_CYRILLIC, **_GREEK, **_ARABIC}

# Particles that belong to the following surname ("DE LA CRUZ"), and conjunctions between
# two surnames ("GARCIA Y LOPEZ"), used to find the first surname of a compound one.
_PARTICLES = frozenset(
    {
        "DE", "DEL", "LA", "LAS", "LOS", "LO", "DA", "DAS", "DO", "DOS", "DI", "DU", "VAN",
        "VON", "DER", "DEN", "TEN", "TER", "LE", "LES", "MC", "MAC", "SAN", "SANTA", "AL", "EL",
        "BIN", "BEN", "IBN", "BINT", "ABU",
    }
)  # fmt: skip
_CONJUNCTIONS = frozenset({"Y", "E", "I"})


def _transliterate(text: str, *, expanded: bool) -> str:
    if not isinstance(text, str):
        raise NormalisationError(f"a name must be text, got {type(text).__name__}")
    composed = unicodedata.normalize("NFC", text)
    if expanded:
        composed = composed.translate(_EXPANDED)
    composed = "".join(c for c in composed if c not in _APOSTROPHES)
    decomposed = unicodedata.normalize("NFKD", composed)
    base = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    upper = base.upper().replace("ΟΥ", "OU")
    out: list[str] = []
    for char in upper:
        if "A" <= char <= "Z":
            out.append(char)
        elif char in _LETTERS:
            out.append(_LETTERS[char])
        else:
            category = unicodedata.category(char)
            if category in ("Lm", "Cf"):
                continue  # modifier letters, tatweel, zero-width joiners: no sound, no space
            if category.startswith("L"):
                name = unicodedata.name(char, "unnamed letter")
                raise NormalisationError(
                    f"name {text!r} contains {char!r} (U+{ord(char):04X} {name}), a script "
                    "without a transliteration table; enter the Latin spelling from the "
                    "travel document"
                )
            out.append(" ")
    return " ".join("".join(out).split())


def normalise_name(text: str) -> str:
    """The canonical upper-case A-Z form of a name (primary rule; see the module docstring)."""
    return _transliterate(text, expanded=False)


def normalise_name_expanded(text: str) -> str:
    """Like :func:`normalise_name` but with the ICAO alternative Ä→AE, Ö→OE, Ü→UE, Å→AA."""
    return _transliterate(text, expanded=True)


def first_surname(surname: str) -> str:
    """The first surname of a compound one: "GARCIA LOPEZ" → "GARCIA", "DE LA CRUZ" unchanged.

    Takes a normalised surname; particles stay with the surname they precede.
    """
    groups: list[list[str]] = []
    pending: list[str] = []
    for token in surname.split():
        if token in _CONJUNCTIONS and groups and not pending:
            continue
        if token in _PARTICLES:
            pending.append(token)
            continue
        groups.append([*pending, token])
        pending = []
    if pending:
        if groups:
            groups[-1].extend(pending)
        else:
            groups.append(pending)
    return " ".join(groups[0]) if groups else ""


def _key(surname: str, given_names: str) -> str:
    return f"{surname}|{given_names}"


def name_variants(surname: str, given_names: str) -> list[str]:
    """The exact name keys ``SURNAME|GIVEN NAMES`` for matching; sorted, at most 8.

    Variants: full name; surname with the first given name only; the first surname of a
    compound surname with both; and, when the name has Ä, Ö, Ü or Å, the full and first-given
    keys under the ICAO alternative spelling. A name given only in ``given_names`` (a mononym)
    is moved to the surname, as Doc 9303 prescribes.
    """
    keys: set[str] = set()
    for expanded in (False, True):
        primary = _transliterate(surname, expanded=expanded)
        secondary = _transliterate(given_names, expanded=expanded)
        if not primary:
            primary, secondary = secondary, ""
        if not primary:
            raise NormalisationError("a name needs a surname or a given name; both are empty")
        first_given = secondary.split(" ", 1)[0]
        keys.add(_key(primary, secondary))
        keys.add(_key(primary, first_given))
        if not expanded:
            first = first_surname(primary)
            if first and first != primary:
                keys.add(_key(first, secondary))
                keys.add(_key(first, first_given))
    variants = sorted(keys)
    assert len(variants) <= MAX_VARIANTS
    return variants
