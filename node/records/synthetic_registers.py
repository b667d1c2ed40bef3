"""The datasets that are not written person by person: alerts on documents nobody in the files
carries, persons of interest, and the consular directory.

Why: these registers have their own populations. Most document alerts concern lost or stolen
documents of people who never appear in the encounters; suspected smugglers work along stretches
of the corridor, so several countries know the same ones; the consular directory lists the
consulates accredited in a country. Each is written once per run, after the encounters
(:func:`node.records.generate.generate`), with the sampling it needs.

Invariants:
* Draws come from the run's local RNG (after all encounter batches), except the smugglers shared
  across the federation (hashed, domain :data:`~node.records.synthetic_people.D_SMUGGLER`: the
  same identity in every country that knows them) and the consular directory (an RNG seeded by
  federation seed and country only: the same directory whatever the seed or the size).
* Persons of interest get ground-truth rows; their global id is ``S`` + the stream index for
  shared smugglers and a per-country local id otherwise.
* Sizes scale with the encounters: about one alert per 150 and one person of interest per 400
  (with small minimums).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from node.records.codelists import Language, codelist
from node.records.datasets import DATASETS
from node.records.names import normalise_name
from node.records.population import DEFAULT_PASSPORT_FORMAT, PASSPORT_FORMATS
from node.records.synthetic_csv import date_strings, given_names, numbered, prefixed
from node.records.synthetic_encounters import EncounterEmitter
from node.records.synthetic_people import (
    D_SMUGGLER,
    U64_MASK,
    document_numbers,
    draw_identities,
    hashed_uniforms,
    rng_uniforms,
)
from node.records.synthetic_tables import END_DAY, cumulative, pick

SMUGGLER_NATIONALITIES: Mapping[str, float] = {
    "COL": 20, "MEX": 15, "GTM": 12, "HND": 10, "NIC": 8, "ECU": 8, "VEN": 6, "CRI": 5, "SLV": 4,
    "DOM": 3, "CUB": 3, "CHN": 3, "IND": 2, "BGD": 1, "CMR": 1, "NPL": 1,
}  # fmt: skip
SMUGGLING_CORRIDOR = ("PAN", "CRI", "NIC", "HND", "GTM", "MEX", "USA")
SMUGGLING_ELSEWHERE = ("SLV", "BLZ", "DOM", "CAN")
POI_REASON_WEIGHTS = (0.55, 0.1, 0.15, 0.12, 0.08)
RANDOM_ALERT_TYPES = (
    "lost",
    "stolen",
    "stolen_blank",
    "revoked",
    "counterfeit",
    "forged",
    "fraudulently_obtained",
)
RANDOM_ALERT_WEIGHTS = (0.35, 0.25, 0.1, 0.1, 0.1, 0.05, 0.05)


def _smuggler_share(country: str) -> float:
    """P(a federation smuggler operates in ``country``): 15 % work one off-corridor country,
    the rest a run of 1-4 consecutive corridor countries."""
    if country in SMUGGLING_ELSEWHERE:
        return 0.15 / len(SMUGGLING_ELSEWHERE)
    i, n = SMUGGLING_CORRIDOR.index(country), len(SMUGGLING_CORRIDOR)
    runs = [(a, length) for a in range(n) for length in (1, 2, 3, 4)]
    return 0.85 * sum(a <= i < a + length for a, length in runs) / len(runs)


def write_persons_of_interest(em: EncounterEmitter, encounters: int) -> None:
    """Suspected smugglers: ~60 % from the federation pool (several countries know them)."""
    t, rng, country = em.t, em.rng, em.country
    nats = np.array([t.nat_codes.index(n) for n in SMUGGLER_NATIONALITIES], np.int64)
    nat_cum = cumulative(tuple(SMUGGLER_NATIONALITIES.values()))
    target = max(4, encounters // 400)
    scan = math.ceil(0.6 * target / _smuggler_share(country))
    u = hashed_uniforms(em.fed, D_SMUGGLER, np.arange(scan, dtype=np.int64))
    elsewhere = np.array(SMUGGLING_ELSEWHERE)[(u(201) * len(SMUGGLING_ELSEWHERE)).astype(int)]
    start, length = (u(202) * len(SMUGGLING_CORRIDOR)).astype(int), 1 + (u(203) * 4).astype(int)
    i = SMUGGLING_CORRIDOR.index(country) if country in SMUGGLING_CORRIDOR else -99
    here = np.where(u(200) < 0.15, elsewhere == country, (start <= i) & (i < start + length))
    ids = np.nonzero(here)[0].astype(np.int64)
    fed_u, n_local = hashed_uniforms(em.fed, D_SMUGGLER, ids), max(target - len(ids), 0)
    fed_nat, local_nat = nats[pick(nat_cum, fed_u(204))], nats[pick(nat_cum, rng.random(n_local))]
    nat = np.concatenate([fed_nat, local_nat])
    since = (np.concatenate([fed_u(205), rng.random(n_local)]) * (END_DAY - 400)).astype(np.int64)
    shared = draw_identities(t, fed_u, fed_nat, since[: len(ids)])
    local = draw_identities(t, rng_uniforms(rng, n_local), local_nat, since[len(ids) :])
    ident = {k: np.concatenate([shared[k], local[k]]) for k in shared}
    reason_u = np.concatenate([fed_u(206), rng.random(n_local)])
    reasons = np.array(_poi_reasons(), dtype=object)[pick(cumulative(POI_REASON_WEIGHTS), reason_u)]
    m = len(nat)
    days = np.minimum(since + (rng.random(m) * 400).astype(np.int64), END_DAY)
    number = np.where(ident["kind"] & 1, ident["passport"], ident["idcard"]).astype(object)
    state = np.array(t.nat_codes, dtype=object)[nat]
    has_doc = ident["kind"] > 0
    names = em.name_table[0]
    given = given_names(names, ident["g1"], ident["g2"])
    births = np.where(
        rng.random(m) < 0.8, date_strings(ident["birth"]), date_strings(ident["birth"], 4)
    )
    record_ids = em.next_ids("S", m)
    columns = [names[ident["sur"]], given, births, state, number, np.where(has_doc, state, "")]
    columns += [reasons, date_strings(days)]
    em.out.columns("persons_of_interest.csv", record_ids, *(c.tolist() for c in columns))
    gids = prefixed("S", ids + 10**8).tolist()
    gids += numbered(f"L{country}{em.seed}-S", 10**9, n_local)
    keys = np.where(has_doc, state + "|" + number, "").tolist()
    what = ["persons_of_interest"] * m
    em.out.columns("ground_truth.csv", gids, [country] * m, what, record_ids, keys, state.tolist())


def _poi_reasons() -> tuple[str, ...]:
    return DATASETS["persons_of_interest"].field("reason").choices


def write_random_alerts(em: EncounterEmitter, encounters: int) -> None:
    """Alerts not linked to anyone in the files: lost and stolen documents, mostly national."""
    t, rng, n = em.t, em.rng, max(3, encounters // 150)
    nat_weights = t.model.weights.sum(axis=(0, 2))
    foreign = np.array(t.nat_codes[:-1], dtype=object)[pick(cumulative(nat_weights), rng.random(n))]
    states = np.where(rng.random(n) < 0.4, em.country, foreign)
    fmt = [PASSPORT_FORMATS.get(s, DEFAULT_PASSPORT_FORMAT) for s in states.tolist()]
    fmt_index = np.array([t.formats.index(f) for f in fmt], np.int64)
    numbers = document_numbers(t, rng_uniforms(rng, n), fmt_index, np.ones(n, np.bool_), 0)
    kinds = np.array(RANDOM_ALERT_TYPES)[pick(cumulative(RANDOM_ALERT_WEIGHTS), rng.random(n))]
    coin = rng.random(n) < 0.5
    source = np.select(
        [kinds == "lost", np.isin(kinds, ("stolen_blank", "revoked")), kinds == "stolen"],
        ["holder_report", "issuing_state", np.where(coin, "holder_report", "interpol_sltd")],
        np.where(coin, "partner_country", "inspection"),
    )
    day = date_strings((rng.random(n) * (END_DAY + 1)).astype(np.int64)).tolist()
    columns = [c.tolist() for c in (kinds, numbers, states)]
    em.out.columns("document_alerts.csv", em.next_ids("A", n), *columns, day, source.tolist())


CONSULAR_PRESENCE: Mapping[str, float] = {
    "CHN": 0.95, "CUB": 0.95, "COL": 0.95, "IND": 0.9, "ECU": 0.9, "BRA": 0.9, "CHL": 0.85,
    "PER": 0.8, "HTI": 0.7, "VEN": 0.6, "TUR": 0.6, "RUS": 0.6, "EGY": 0.5, "MAR": 0.4,
    "VNM": 0.4, "PAK": 0.3, "NGA": 0.3, "BGD": 0.2, "AGO": 0.2, "SEN": 0.2, "ETH": 0.2,
    "NPL": 0.15, "LKA": 0.15, "COD": 0.15, "GHA": 0.15, "CMR": 0.1, "GIN": 0.1, "AFG": 0.1,
    "UZB": 0.1, "ERI": 0.05, "MRT": 0.05,
}  # fmt: skip
#: Capital, calling code, language of the directory, other consular cities.
HOSTS: Mapping[str, tuple[str, str, Language, tuple[str, ...]]] = {
    "PAN": ("Ciudad de Panamá", "507", "es", ()), "CRI": ("San José", "506", "es", ()),
    "NIC": ("Managua", "505", "es", ()), "HND": ("Tegucigalpa", "504", "es", ()),
    "SLV": ("San Salvador", "503", "es", ()), "GTM": ("Ciudad de Guatemala", "502", "es", ()),
    "BLZ": ("Belmopan", "501", "en", ()), "DOM": ("Santo Domingo", "1", "es", ()),
    "MEX": ("Ciudad de México", "52", "es", ("Tapachula", "Monterrey")),
    "USA": ("Washington", "1", "en", ("New York", "Miami", "Houston", "Los Angeles")),
    "CAN": ("Ottawa", "1", "en", ("Toronto", "Montréal", "Vancouver")),
}  # fmt: skip
STREETS = {
    "es": ("Avenida Balboa", "Calle 50", "Paseo Colón", "Avenida Reforma", "Calle Real",
           "Boulevard Morazán", "Avenida Las Américas"),
    "en": ("Massachusetts Avenue", "Albert Street", "Queen Street", "Main Street", "Park Avenue",
           "Constitution Drive"),
}  # fmt: skip
OFFICE_NAMES = {
    ("es", "embassy"): "Embajada de {o} en {h} — Sección Consular",
    ("en", "embassy"): "Embassy of {o} in {h} — Consular Section",
    ("es", "consulate"): "Consulado General de {o} en {h}",
    ("en", "consulate"): "Consulate General of {o} in {h}",
    ("es", "concurrent"): "Embajada de {o} en México, concurrente para {h}",
    ("en", "concurrent"): "Embassy of {o} in Mexico, also accredited to {h}",
}
PROCEDURE_CHANCES = (1.0, 1.0, 0.7, 0.5, 0.6, 0.8)  # in the order of the dataset's choices


def write_consular_directory(em: EncounterEmitter) -> None:
    """Public directory of the consulates accredited in this country (federation-fixed)."""
    rng = np.random.default_rng([em.fed & U64_MASK, 4, em.ci])
    capital, code, lang, others = HOSTS[em.country]
    size = {"USA": 1.5, "CAN": 1.5, "MEX": 1.5, "BLZ": 0.4}.get(em.country, 1.0)
    labels, host = codelist("nationality"), codelist("member").label(em.country, lang)
    procedures = DATASETS["consular_directory"].field("procedures").choices
    rows: list[tuple[str, ...]] = []
    for origin, presence in CONSULAR_PRESENCE.items():
        if rng.random() < min(presence * size, 0.98):
            offices = [(capital, "embassy", host, code)]
            offices += [(c, "consulate", c, code) for c in others if rng.random() < 0.3]
        elif em.country not in ("MEX", "USA", "CAN") and rng.random() < 0.5:
            offices = [("Ciudad de México", "concurrent", host, "52")]
        else:
            continue
        for city, kind, where, phone in offices:
            name = OFFICE_NAMES[lang, kind].format(o=labels.label(origin, lang), h=where)
            handles = [
                p for p, c in zip(procedures, PROCEDURE_CHANCES, strict=True) if rng.random() < c
            ]
            street = STREETS[lang][int(rng.integers(len(STREETS[lang])))]
            number, exchange, line = (
                int(rng.integers(a, b)) for a, b in ((1, 2000), (200, 999), (1000, 9999))
            )
            slug = normalise_name(city).lower().replace(" ", "")
            email = f"consular.{slug}@{origin.lower()}-mfa.example"
            contact = (f"{street} {number}, {city}", f"+{phone} {exchange} {line}", email)
            rows.append((origin, em.country, city, name, *contact, ";".join(handles)))
    em.out.write("consular_directory.csv", rows)
