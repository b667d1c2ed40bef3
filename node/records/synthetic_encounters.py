"""Encounter rows, and the rows that follow from each person a country records.

Why: what a country's file says about a person is not who the person is. Officers record a
declared or presumed nationality, a partial birth date, a loosely typed document number, a name
in capitals or as read from the MRZ. :class:`EncounterEmitter` turns batches of persons
(:mod:`node.records.synthetic_people`) into this country's encounters, travel documents, face
templates, alerts on their documents and ground-truth rows, following the local presentation
habits tabled below (assumed, after each member's systems).

Invariants:
* Every draw comes from the country's local RNG (seeded by country and seed), except a journeying
  person's face-template base vector, which is federation-wide so that templates match across
  files.
* A person's events here are in date order and never after END_DAY. :meth:`EncounterEmitter.emit`
  writes at most ``limit`` events and keeps only the persons it wrote events for, so the
  encounters file gets exactly the requested number of rows.
* Ground truth gets one row per person written and per alert on their documents, with the
  canonical ``STATE|NUMBER`` key where a document was shown (and always for alerts).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from node.records.calibration_data import EVENT_MODELS
from node.records.codelists import REGIONAL_MEMBERS, age_group_for, iso_alpha2_to_alpha3
from node.records.datasets import DATASETS, TEMPLATE_DIMENSION
from node.records.population import NAME_GROUPS, words
from node.records.synthetic_csv import (
    OutputFiles,
    bit_strings,
    date_strings,
    given_names,
    loosely_typed,
    numbered,
    prefixed,
)
from node.records.synthetic_people import D_BIO, U64_MASK, PersonBatch
from node.records.synthetic_tables import (
    END_DAY,
    EVENTS,
    I64,
    SamplingTables,
    cumulative,
    pick,
)

#: Share of document holders whose document is on an alert, raised where they were first recorded.
ALERT_SHARE = 0.015

# --- local presentation of records (assumed) ------------------------------------------------
BORDER_POSTS: Mapping[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "PAN": (("ERM-LB", "ERM-SV", "PC", "GB", "PTY"), (0.5, 0.35, 0.08, 0.02, 0.05)),
    "CRI": (("EATM-SUR", "PCAN", "PPB", "SJO", "LCH"), (0.55, 0.25, 0.12, 0.05, 0.03)),
    "NIC": (("PPB", "MGA", "GUASAULE", "LAS-MANOS"), (0.4, 0.3, 0.15, 0.15)),
    "HND": (("CAMI-DANLI", "CAMI-TROJES", "CAMI-CHOLUTECA", "AGUA-CALIENTE", "CORINTO"),
            (0.5, 0.2, 0.15, 0.1, 0.05)),
    "SLV": (("SAL", "LA-HACHADURA", "SAN-CRISTOBAL", "EL-AMATILLO"), (0.5, 0.2, 0.15, 0.15)),
    "GTM": (("AGUA-CALIENTE", "CORINTO", "TECUN-UMAN", "EL-CEIBO", "GUA"),
            (0.35, 0.2, 0.25, 0.1, 0.1)),
    "BLZ": (("BENQUE", "SANTA-ELENA", "BZE", "JALACTE"), (0.4, 0.3, 0.2, 0.1)),
    "MEX": (("TAP", "CDHID", "TEN", "CHT", "CDMX", "MTY", "CDJ", "TIJ", "PNEG", "MAT"),
            (0.3, 0.12, 0.1, 0.04, 0.1, 0.08, 0.08, 0.08, 0.05, 0.05)),
    "USA": (("RGV", "DRT", "LRT", "EPT", "TCA", "YUM", "SDC", "ELC", "BBT"),
            (0.25, 0.15, 0.08, 0.14, 0.14, 0.08, 0.1, 0.04, 0.02)),
    "CAN": (("YUL", "YYZ", "LACOLLE", "YVR"), (0.35, 0.35, 0.2, 0.1)),
    "DOM": (("DAJABON", "ELIAS-PINA", "JIMANI", "PEDERNALES", "SDQ"),
            (0.4, 0.2, 0.2, 0.1, 0.1)),
}  # fmt: skip
AIRPORTS: Mapping[str, str] = {"NIC": "MGA", "SLV": "SAL"}
CARE: Mapping[str, Mapping[str, float]] = {
    "PAN": {"food": 0.8, "health": 0.3, "shelter": 0.5, "transport": 0.4, "psychosocial": 0.05},
    "CRI": {"food": 0.4, "transport": 0.5, "health": 0.15, "shelter": 0.2},
    "HND": {"food": 0.3, "health": 0.2, "shelter": 0.1, "legal_aid": 0.02},
    "GTM": {"food": 0.1, "health": 0.05},
    "MEX": {"shelter": 0.2, "legal_aid": 0.1, "consular_assistance": 0.05, "health": 0.08},
    "USA": {"health": 0.1, "legal_aid": 0.05},
    "CAN": {"legal_aid": 0.4, "shelter": 0.2, "health": 0.3},
    "DOM": {"consular_assistance": 0.02},
}  # fmt: skip
VULNERABILITY_CODES = (
    "unaccompanied_minor", "separated_minor", "possible_trafficking_victim", "pregnant",
    "disability", "chronic_illness", "elderly", "lgbtiq",
)  # fmt: skip
EXPLICIT_NONE = frozenset({"PAN", "CRI", "MEX"})  # these systems record "ninguna" explicitly
ZERO_DATES = frozenset({"HND", "GTM", "SLV", "NIC"})  # partial dates written as 1990-00-00
MRZ_NAMES = frozenset({"USA", "CAN"})  # names mostly stored as read from the MRZ
ALERT_TYPES = ("impostor", "stolen", "counterfeit", "forged", "fraudulently_obtained", "fraudulent")
ALERT_WEIGHTS = (0.3, 0.2, 0.15, 0.15, 0.1, 0.1)


_PER_EVENT = words("person_id border_post nationality nationality_basis sex birth_date")
_PER_EVENT += words("age_group vulnerabilities document_number document_country surname")
_PER_EVENT += ("given_names",)
_ENCOUNTER_COLUMNS = tuple(DATASETS["encounters"].columns)
_PER_DOCUMENT = words("person_id true_nat mrz_surname mrz_given full_birth")


class EncounterEmitter:
    """Turns batches of persons into this country's rows (all draws from the local RNG)."""

    def __init__(
        self, t: SamplingTables, ci: int, seed: int, fed: int, fraction: float, out: OutputFiles
    ) -> None:
        self.t, self.ci, self.country, self.out = t, ci, REGIONAL_MEMBERS[ci], out
        self.seed, self.fed, self.fraction = seed, fed, fraction
        self.rng = np.random.default_rng([0x4C4F43414C, ci, seed & U64_MASK])
        self.counters = dict.fromkeys(("P", "E", "D", "A", "B", "S"), 0)
        self.persons = self.journeying = 0
        first, self.stages = EVENT_MODELS[self.country]
        self.first_cum = cumulative(tuple(first.values()))
        self.first_types = np.array([EVENTS.index(e) for e in first], np.int64)
        posts, weights = BORDER_POSTS[self.country]
        self.posts, self.post_cum = np.array(posts, dtype=object), cumulative(weights)
        care = CARE.get(self.country, {})
        self.care_p = np.array(list(care.values()))
        explicit = self.country in EXPLICIT_NONE
        self.care_str = bit_strings(tuple(care), explicit)
        self.vuln_str = bit_strings(VULNERABILITY_CODES, explicit)
        self.ages = np.array([age_group_for(a) for a in range(131)], dtype=object)
        self.name_table = np.array(t.names, dtype=object)
        self.nat_codes = np.array(t.nat_codes, dtype=object)
        self.air = t.model.routes.index("air_nicaragua")
        alpha2 = {v: k for k, v in iso_alpha2_to_alpha3().items()}
        self.alpha2 = np.array([alpha2.get(n, n) for n in t.nat_codes], dtype=object)
        self.cyrillic = np.isin(
            np.arange(len(t.nat_codes)),
            [
                i
                for i, n in enumerate(t.nat_codes)
                if n in NAME_GROUPS["slavic_caucasian"] or n in NAME_GROUPS["central_asian"]
            ],
        )

    def next_ids(self, kind: str, n: int) -> list[str]:
        start = self.counters[kind] + 10**9
        self.counters[kind] += n
        return numbered(f"{self.country}{kind}", start, n)

    def _events(self, p: PersonBatch) -> tuple[I64, I64, I64]:
        """Each person's events here, person by person in date order: (person, type, day)."""
        rng, k = self.rng, len(p)
        first = self.first_types[pick(self.first_cum, rng.random(k))]
        forced = self.t.first_event[p.chain, p.pos]
        types, days = [np.where(forced >= 0, forced, first)], [p.day]
        have = np.zeros((k, len(EVENTS)), np.bool_)
        have[np.arange(k), types[0]] = True
        last = p.day
        for stage in self.stages:
            gate = have[:, EVENTS.index(stage.requires)] if stage.requires else np.ones(k, bool)
            x, outcome, cum = rng.random(k), np.full(k, -1, np.int64), 0.0
            for event, prob in stage.outcomes.items():
                outcome[(x >= cum) & (x < cum + prob)] = EVENTS.index(event)
                cum += prob
            lo, hi = stage.delay
            when = last + lo + (rng.random(k) * (hi - lo + 1)).astype(np.int64)
            ok = gate & (outcome >= 0) & (when <= END_DAY)
            types.append(np.where(ok, outcome, -1))
            days.append(when)
            have[ok, outcome[ok]] = True
            last = np.where(ok, when, last)
        t_mat, d_mat = np.stack(types, axis=1), np.stack(days, axis=1)
        person, step = np.nonzero(t_mat >= 0)
        return person.astype(np.int64), t_mat[person, step], d_mat[person, step]

    def emit(self, p: PersonBatch, limit: int) -> int:
        """Write the rows of ``p`` (at most ``limit`` events); return the events written."""
        person, etype, eday = (a[:limit] for a in self._events(p))
        if not len(person):
            return 0
        p = p.take(np.arange(int(person[-1]) + 1))
        self.persons += len(p)
        self.journeying += int((p.gid >= 0).sum())
        cols, n = self._person_columns(p), len(person)
        care = np.zeros(n, np.int64)
        for bit, prob in enumerate(self.care_p):
            care |= (self.rng.random(n) < prob).astype(np.int64) << bit
        person_cols = {c: cols[c][person].tolist() for c in _PER_EVENT}
        person_cols["event_type"] = np.array(EVENTS, dtype=object)[etype].tolist()
        person_cols["event_date"] = date_strings(eday).tolist()
        person_cols["care_provided"] = self.care_str[care].tolist()
        person_cols["record_id"] = self.next_ids("E", n)
        self.out.columns("encounters.csv", *(person_cols[c] for c in _ENCOUNTER_COLUMNS))
        gt = [cols[c].tolist() for c in ("gid", "person_id", "key", "true_nat")]
        here, what = [self.country] * len(p), ["encounters"] * len(p)
        self.out.columns("ground_truth.csv", gt[0], here, what, *gt[1:])
        self._documents(p, cols)
        self._templates(p, cols)
        self._alerts(p, cols)
        return n

    def _person_columns(self, p: PersonBatch) -> dict[str, npt.NDArray[Any]]:
        """Per-person values as recorded here (what is shown, declared, typed, flagged)."""
        t, rng, k, per = self.t, self.rng, len(p), self.t.per_nat
        documented = (p.kind > 0) & (rng.random(k) < per["shows"][p.nat])
        x, dec = rng.random(k), per["declared"][p.nat]
        basis = np.where(
            documented, 0, np.where(x < dec, 1, np.where(x < dec + per["presumed"][p.nat], 2, 3))
        )
        y, z = rng.random(k), rng.random(k)
        decoy = np.where(
            np.isin(p.nat, t.african),
            t.african[(z * len(t.african)).astype(int)],
            t.common[(z * len(t.common)).astype(int)],
        )
        wrong = ((basis == 1) & (y < 0.03)) | ((basis == 2) & (y < 0.15))
        recorded = np.where(basis == 3, len(t.nat_codes) - 1, np.where(wrong, decoy, p.nat))
        sex = np.where(p.male, "M", "F").astype(object)
        sex[(basis > 0) & (rng.random(k) < 0.01)] = "U"
        full = date_strings(p.birth)
        precision = np.where(documented, 0, pick(cumulative((0.55, 0.15, 0.30)), rng.random(k)))
        precision[(basis == 3) & (rng.random(k) < 0.08)] = 3
        zero = self.country in ZERO_DATES
        birth = np.select(
            [precision == 0, precision == 1, precision == 2],
            [
                full,
                date_strings(p.birth, 7, "-00" if zero else ""),
                date_strings(p.birth, 4, "-00-00" if zero else ""),
            ],
            "",
        )
        age = np.clip((p.day - p.birth) * 12 // 4383, 0, 130)  # 4383 = 12 x 365.25
        age_group = self.ages[age]
        age_group[(basis == 3) & (rng.random(k) < 0.2)] = "_U"
        post = self.posts[pick(self.post_cum, rng.random(k))]
        if self.country in AIRPORTS:
            post[p.route == self.air] = AIRPORTS[self.country]
        primary = np.where(p.kind & 1, p.passport, p.idcard)
        state = self.nat_codes[p.nat]
        how = np.where(
            documented, pick(cumulative((0.95, 0.015, 0.015, 0.01, 0.01)), rng.random(k)), 0
        )
        doc = np.where(documented, primary.astype(object), "")
        for i in np.nonzero(how)[0].tolist():
            doc[i] = loosely_typed(doc[i], int(how[i]))
        doc_state = np.where(rng.random(k) < 0.03, self.alpha2[p.nat], state)
        doc_state[~documented] = ""
        local = np.array(
            numbered(f"L{self.country}{self.seed}-", self.counters["P"] + 10**9, k), dtype=object
        )
        gid = np.where(p.gid >= 0, prefixed("G", p.gid + 10**10), local)
        return {
            "person_id": np.array(self.next_ids("P", k), dtype=object),
            "gid": gid,
            "nationality": self.nat_codes[recorded],
            "true_nat": state,
            "nationality_basis": np.array(
                ("documented", "declared", "presumed", "unknown"), dtype=object
            )[basis],
            "documented": documented,
            "sex": sex,
            "birth_date": birth,
            "full_birth": full,
            "age_group": age_group,
            "border_post": post,
            "document_number": doc,
            "document_country": doc_state,
            "key": np.where(documented, state + "|" + primary.astype(object), ""),
            "vulnerabilities": self.vuln_str[self._vulnerabilities(p, age)],
            **self._names(p),
        }

    def _vulnerabilities(self, p: PersonBatch, age: I64) -> I64:
        r = [self.rng.random(len(p)) for _ in VULNERABILITY_CODES]
        minor, woman = age < 18, ~p.male
        unaccompanied = minor & (age >= 10) & (r[0] < 0.06)
        bits = (
            unaccompanied,
            minor & ~unaccompanied & (r[1] < 0.03),
            r[2] < np.where(woman & ~minor, 0.02, 0.006),
            woman & (age >= 18) & (age <= 42) & (r[3] < 0.04),
            r[4] < 0.006,
            r[5] < 0.02,
            age >= 60,
            ~minor & (r[7] < 0.004),
        )
        return sum((b.astype(np.int64) << i for i, b in enumerate(bits)), np.zeros(len(p), int))

    def _names(self, p: PersonBatch) -> dict[str, npt.NDArray[Any]]:
        x = self.rng.random(len(p))
        mrz, caps = (0.7, 0.8) if self.country in MRZ_NAMES else (0.12, 0.3)
        style = np.where(x < mrz, 2, np.where(x < caps, 1, 0))
        style[self.cyrillic[p.nat] & (self.rng.random(len(p)) < 0.15)] = 3
        return {
            "surname": self.name_table[style, p.sur],
            "given_names": self._given(style, p),
            "mrz_surname": self.name_table[2, p.sur],
            "mrz_given": self._given(2, p),
        }

    def _given(self, style: I64 | int, p: PersonBatch) -> npt.NDArray[np.object_]:
        if isinstance(style, int):
            return given_names(self.name_table[style], p.g1, p.g2)
        first = self.name_table[style, p.g1]
        second = self.name_table[style, np.maximum(p.g2, 0)]
        out: npt.NDArray[np.object_] = np.where(p.g2 >= 0, first + " " + second, first)
        return out

    def _documents(self, p: PersonBatch, cols: Mapping[str, npt.NDArray[Any]]) -> None:
        for code, has, numbers, expiry in (
            ("P", (p.kind & 1) > 0, p.passport, p.p_expiry),
            ("I", p.kind >= 2, p.idcard, p.i_expiry),
        ):
            sel = np.nonzero(cols["documented"] & has)[0]
            pid, nat, sur, given, birth = (cols[c][sel].tolist() for c in _PER_DOCUMENT)
            sex = np.where(p.male[sel], "M", "F").tolist()
            expires, seen = date_strings(expiry[sel]).tolist(), date_strings(p.day[sel]).tolist()
            ids, kind, number = (
                self.next_ids("D", len(sel)),
                [code] * len(sel),
                numbers[sel].tolist(),
            )
            row = (ids, pid, kind, number, nat, nat, sur, given, birth, sex, expires, seen)
            self.out.columns("travel_documents.csv", *row)

    def _templates(self, p: PersonBatch, cols: Mapping[str, npt.NDArray[Any]]) -> None:
        """One capture per person: the person's unit base vector plus capture noise."""
        sel = np.nonzero(p.bio < self.fraction)[0]
        dim = TEMPLATE_DIMENSION
        base = self.rng.standard_normal((len(sel), dim))
        for row, g in enumerate(p.gid[sel].tolist()):
            if g >= 0:  # journeying: the same face everywhere
                base[row] = np.random.default_rng([self.fed & U64_MASK, D_BIO, g]).standard_normal(
                    dim
                )
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        sigma = 0.4 + 0.35 * self.rng.random(len(sel))
        noisy = base + sigma[:, None] * self.rng.standard_normal(base.shape) / math.sqrt(dim)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        encoded = [base64.b64encode(v.tobytes()).decode("ascii") for v in noisy.astype("<f4")]
        pid, day = cols["person_id"][sel].tolist(), date_strings(p.day[sel]).tolist()
        ids = self.next_ids("B", len(sel))
        self.out.columns("biometric_templates.csv", ids, pid, ["face"] * len(sel), day, encoded)

    def _alerts(self, p: PersonBatch, cols: Mapping[str, npt.NDArray[Any]]) -> None:
        """Alerts on documents carried by persons this country recorded first."""
        sel = np.nonzero((p.alert < ALERT_SHARE) & (p.kind > 0) & (p.reporter == self.ci))[0]
        m = len(sel)
        number = np.where(p.kind[sel] & 1, p.passport[sel], p.idcard[sel]).astype(object)
        kinds = np.array(ALERT_TYPES, dtype=object)[
            pick(cumulative(ALERT_WEIGHTS), p.alert_type[sel])
        ]
        reported = np.minimum(p.day[sel] + (self.rng.random(m) * 30).astype(int), END_DAY)
        ids, state = self.next_ids("A", m), cols["true_nat"][sel]
        day, nat, num = date_strings(reported).tolist(), state.tolist(), number.tolist()
        inspection, here, what = ["inspection"] * m, [self.country] * m, ["document_alerts"] * m
        self.out.columns("document_alerts.csv", ids, kinds.tolist(), num, nat, day, inspection)
        keys = (state + "|" + number).tolist()
        self.out.columns("ground_truth.csv", cols["gid"][sel].tolist(), here, what, ids, keys, nat)
