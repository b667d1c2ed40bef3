"""The synthetic generator: determinism, validity, federation overlap and calibration shape."""

from __future__ import annotations

import base64
import csv
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from node.cli import generate_cmd
from node.errors import InvalidArgumentError
from node.records import calibration as cal
from node.records.datasets import DATASETS, validate_row
from node.records.generate import OUTPUT_FILES, generate
from node.records.icao import document_key, make_td1, make_td3, parse_mrz
from node.records.names import normalise_name

N = 6_000
Rows = list[dict[str, str]]


def read(directory: Path, name: str) -> Rows:
    with (directory / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("PAN")
    generate("PAN", N, 11, out, templates_fraction=0.2)
    return out


@pytest.fixture(scope="module")
def hnd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("HND")
    generate("HND", N, 29, out, templates_fraction=0.2)
    return out


def by_year(rows: Rows, nationality: str) -> Counter[int]:
    return Counter(int(r["event_date"][:4]) for r in rows if r["nationality"] == nationality)


# --------------------------------------------------------------------------- determinism


def test_same_arguments_same_bytes_other_seed_other_files(tmp_path: Path) -> None:
    runs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate("CRI", 2_000, seed, tmp_path / label)
        runs[label] = {n: (tmp_path / label / n).read_bytes() for n in OUTPUT_FILES}
    assert runs["a"] == runs["b"]
    assert runs["a"]["encounters.csv"] != runs["c"]["encounters.csv"]
    # the public directory does not depend on the local seed
    assert runs["a"]["consular_directory.csv"] == runs["c"]["consular_directory.csv"]


def test_exact_row_count_and_progress(tmp_path: Path) -> None:
    seen: list[int] = []
    summary = generate("BLZ", 1_234, 1, tmp_path, progress=seen.append)
    assert summary.rows["encounters.csv"] == 1_234 == len(read(tmp_path, "encounters.csv"))
    assert seen == sorted(seen) and seen[-1] == 1_234
    assert summary.journeying_persons < summary.persons


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"country": "FRA"}, "country"), ({"encounters": 0}, "encounters"),
     ({"templates_fraction": 1.5}, "templates_fraction")],
)  # fmt: skip
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"country": "PAN", "encounters": 10, "seed": 1, "out_dir": tmp_path}
    with pytest.raises(InvalidArgumentError) as info:
        generate(**{**args, **kwargs})  # type: ignore[arg-type]
    assert info.value.field == field


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize("country", ["pan", "hnd"])
def test_every_row_validates(country: str, request: pytest.FixtureRequest) -> None:
    directory: Path = request.getfixturevalue(country)
    for name, spec in DATASETS.items():
        if name == "matrices":
            continue
        rows = read(directory, spec.filename)
        assert rows, name
        assert list(rows[0]) == spec.columns
        for row in rows:
            assert validate_row(spec, row) == [], (name, row)
    ids = [r["record_id"] for r in read(directory, "encounters.csv")]
    assert len(set(ids)) == len(ids) == N


def test_documents_are_canonical_icao_and_build_valid_mrzs(pan: Path) -> None:
    docs = read(pan, "travel_documents.csv")
    overflow = 0
    for row in docs[::3] + [d for d in docs if d["document_type"] == "I"]:
        number, state = row["document_number"], row["issuing_state"]
        assert document_key(number, state) == f"{state}|{number}"
        assert row["birth_date"] < row["expiry_date"]
        fields = {
            "issuing_state": state, "surname": row["surname"], "given_names": row["given_names"],
            "document_number": number, "nationality": row["nationality"],
            "birth_date": row["birth_date"], "sex": row["sex"], "expiry_date": row["expiry_date"],
        }  # fmt: skip
        if row["document_type"] == "P":
            assert len(number) <= 9
            mrz = make_td3(**fields)
        else:
            overflow += len(number) > 9
            mrz = make_td1(**fields)
        assert parse_mrz(mrz, reference_year=2024).document_number == number
    assert overflow > 20  # identity cards with long numbers use the TD1 overflow


def test_loosely_typed_numbers_normalise_to_the_ground_truth_key(pan: Path) -> None:
    truth = {
        r["local_id"]: r for r in read(pan, "ground_truth.csv") if r["dataset"] == "encounters"
    }
    loose = 0
    for row in read(pan, "encounters.csv"):
        if row["document_number"]:
            key = document_key(row["document_number"], row["document_country"])
            assert key == truth[row["person_id"]]["document_key"]
            loose += key != f"{row['document_country']}|{row['document_number']}"
    assert loose > 50


# --------------------------------------------------------------------------- the federation


def journeying(directory: Path) -> dict[str, dict[str, str]]:
    return {
        r["global_person_id"]: r
        for r in read(directory, "ground_truth.csv")
        if r["dataset"] == "encounters" and r["global_person_id"].startswith("G")
    }


def test_countries_share_persons_consistently(pan: Path, hnd: Path) -> None:
    in_pan, in_hnd = journeying(pan), journeying(hnd)
    shared = set(in_pan) & set(in_hnd)
    assert len(shared) > 0.4 * min(len(in_pan), len(in_hnd))
    local_ids = {r["global_person_id"] for r in read(pan, "ground_truth.csv")} - set(in_pan)
    assert all(g.startswith(("LPAN", "S")) for g in local_ids)
    docs = {d: {r["person_id"]: r for r in read(d, "travel_documents.csv")} for d in (pan, hnd)}
    first_seen: dict[Path, dict[str, str]] = {}
    for d in (pan, hnd):
        first_seen[d] = {}
        for r in read(d, "encounters.csv"):
            first_seen[d].setdefault(r["person_id"], r["event_date"])
    compared = 0
    for g in shared:
        a, b = in_pan[g], in_hnd[g]
        assert a["true_nationality"] == b["true_nationality"]
        assert first_seen[pan][a["local_id"]] <= first_seen[hnd][b["local_id"]]  # corridor order
        if a["document_key"] and b["document_key"]:
            assert a["document_key"] == b["document_key"]
            da, db = docs[pan].get(a["local_id"]), docs[hnd].get(b["local_id"])
            if da and db and da["document_number"] == db["document_number"]:
                for column in ("surname", "given_names", "birth_date", "sex", "expiry_date"):
                    assert da[column] == db[column]
                compared += 1
    assert compared > 500


def test_names_typed_differently_normalise_to_the_document_name(hnd: Path) -> None:
    docs = {r["person_id"]: r for r in read(hnd, "travel_documents.csv")}
    differing = 0
    for row in read(hnd, "encounters.csv"):
        doc = docs.get(row["person_id"])
        if doc is not None:
            assert normalise_name(row["surname"]) == doc["surname"]
            differing += row["surname"] != doc["surname"]
    assert differing > 1_000


def test_alerts_of_one_country_hit_documents_seen_in_another(pan: Path, hnd: Path) -> None:
    alerted = {f"{r['issuing_state']}|{r['document_number']}" for r in
               read(pan, "document_alerts.csv")}  # fmt: skip
    seen_in_hnd = {r["document_key"] for r in read(hnd, "ground_truth.csv") if r["document_key"]}
    assert len(alerted & seen_in_hnd) >= 3
    sources = Counter(r["source"] for r in read(pan, "document_alerts.csv"))
    assert sources["inspection"] > 0 and len(sources) >= 3


def test_some_persons_of_interest_are_known_to_both(pan: Path, hnd: Path) -> None:
    def smugglers(d: Path) -> set[str]:
        rows = read(d, "ground_truth.csv")
        return {
            r["global_person_id"]
            for r in rows
            if r["dataset"] == "persons_of_interest" and r["global_person_id"].startswith("S")
        }

    assert smugglers(pan) & smugglers(hnd)
    assert len(read(pan, "persons_of_interest.csv")) == N // 400


def test_face_templates_match_across_countries(pan: Path, hnd: Path) -> None:
    def vectors(d: Path) -> dict[str, np.ndarray]:
        person = {r["local_id"]: r["global_person_id"] for r in read(d, "ground_truth.csv")}
        return {
            person[r["person_id"]]: np.frombuffer(base64.b64decode(r["vector"]), "<f4")
            for r in read(d, "biometric_templates.csv")
        }

    a, b = vectors(pan), vectors(hnd)
    shared = sorted(set(a) & set(b))
    assert len(shared) > 100
    genuine = np.array([float(a[g] @ b[g]) for g in shared])
    others = sorted(set(b) - set(shared))[: len(shared)]
    impostor = np.array([float(a[g] @ b[o]) for g, o in zip(shared, others, strict=False)])
    assert 0.6 < genuine.mean() < 0.9 and genuine.min() > 0.45
    assert abs(impostor.mean()) < 0.03 and impostor.std() < 0.15
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in a.values())


# --------------------------------------------------------------------------- calibration shape


def test_panama_shape(pan: Path) -> None:
    rows = read(pan, "encounters.csv")
    recent = Counter(r["nationality"] for r in rows if r["event_date"][:4] in ("2022", "2023"))
    assert recent.most_common(1)[0][0] == "VEN"
    assert recent["VEN"] > 0.5 * sum(recent.values())
    cubans = by_year(rows, "CUB")
    assert max(cubans, key=lambda y: cubans[y]) == 2015
    haitians = by_year(rows, "HTI")
    assert haitians[2016] > 5 * haitians[2017] and haitians[2021] > haitians[2020]
    truth = Counter(r["true_nationality"] for r in read(pan, "ground_truth.csv"))
    assert truth["GIN"] == truth["SEN"] == truth["MRT"] == 0  # they fly to Nicaragua
    assert truth["CMR"] > 0 and truth["COD"] > 0  # Africans who crossed the Darién


def test_honduras_has_the_air_route_africans(hnd: Path) -> None:
    rows = [r for r in read(hnd, "encounters.csv") if r["event_date"].startswith("2023")]
    count = Counter(r["nationality"] for r in rows)
    for code, published in cal.HONDURAS_2023_BY_NATIONALITY.items():
        expected = published / cal.HONDURAS_2023_IRREGULAR_ENTRIES
        assert 0.5 * expected < count[code] / len(rows) < 1.6 * expected, code


@pytest.mark.parametrize("country", ["pan", "hnd"])
def test_presumed_or_unknown_share_of_african_and_haitian_flows(
    country: str, request: pytest.FixtureRequest
) -> None:
    directory: Path = request.getfixturevalue(country)
    truth = {r["local_id"]: r["true_nationality"] for r in read(directory, "ground_truth.csv")}
    basis: dict[str, str] = {}
    for r in read(directory, "encounters.csv"):
        nat = truth[r["person_id"]]
        if nat == "HTI" or nat in cal.AFRICAN:
            basis[r["person_id"]] = r["nationality_basis"]
    share = sum(b in ("presumed", "unknown") for b in basis.values()) / len(basis)
    low, high = cal.PRESUMED_OR_UNKNOWN_SHARE
    assert low <= share <= high
    unknown = [r for r in read(directory, "encounters.csv") if r["nationality_basis"] == "unknown"]
    assert unknown and all(r["nationality"] == "XXX" for r in unknown)


def test_many_small_cells(pan: Path) -> None:
    cells = Counter((r["nationality"], r["event_date"][:4]) for r in read(pan, "encounters.csv"))
    small = [c for c, n in cells.items() if n <= 4]
    assert len(small) >= 40
    assert len({n for n, _ in cells}) >= 40


def test_persons_events_are_in_date_order_and_in_range(hnd: Path) -> None:
    dates: dict[str, list[str]] = defaultdict(list)
    for r in read(hnd, "encounters.csv"):
        dates[r["person_id"]].append(r["event_date"])
    assert all(d == sorted(d) for d in dates.values())
    assert min(min(d) for d in dates.values()) >= "2014-01-01"
    assert max(max(d) for d in dates.values()) <= "2024-12-31"
    last_day = sum(d[0] == "2024-12-31" for d in dates.values())
    assert last_day < 0.002 * len(dates)  # late arrivals are not piled up on the last day


# --------------------------------------------------------------------------- calibration data


def shared_dir() -> Path | None:
    env = os.environ.get("ENLACE_SHARED_DIR")
    candidate = Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
    return candidate if (candidate / "data").is_dir() else None


def test_embedded_darien_figures_equal_the_shared_tsv() -> None:
    shared = shared_dir()
    if shared is None:
        pytest.skip("shared directory not available (set ENLACE_SHARED_DIR)")
    path = shared / "data" / "darien_panama_snm_by_nationality.tsv"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    header = lines[0].split("\t")
    assert tuple(header[1:]) == cal.DARIEN_COLUMNS
    table = {}
    for line in lines[1:]:
        cells = line.split("\t")
        cells += [""] * (len(header) - len(cells))
        table[cells[0]] = tuple(int(c) if c.strip() else 0 for c in cells[1:])
    assert table == dict(cal.DARIEN_SNM)


def test_model_reproduces_the_published_totals() -> None:
    model = cal.flow_model()
    assert model.expected_records("HND", 2023) == pytest.approx(545_043, rel=1e-9)
    mexico = model.expected_records("MEX", 2023) * cal.mean_events("MEX")
    assert mexico == pytest.approx(782_176, rel=1e-9)
    hnd = model.expected_by_nationality("HND", 2023)
    assert hnd["GIN"] == pytest.approx(12_902) and hnd["SEN"] == pytest.approx(8_964)
    assert "GIN" not in model.expected_by_nationality("PAN", 2023)
    low, high = cal.PRESUMED_OR_UNKNOWN_SHARE
    assert low <= cal.BASIS_AFRICAN_HAITIAN.presumed_or_unknown() <= high
    assert cal.BASIS_OTHER.presumed_or_unknown() < low


def test_year_regimes_of_the_model() -> None:
    model = cal.flow_model()

    route = model.routes.index("darien")

    def darien(nationality: str) -> dict[int, float]:
        if nationality not in model.nationalities:
            return dict.fromkeys(cal.YEARS, 0.0)
        months = model.weights[route, model.nationalities.index(nationality)]
        return {y: float(months[12 * i : 12 * i + 12].sum()) for i, y in enumerate(cal.YEARS)}

    def peak(nationality: str) -> int:
        by_year = darien(nationality)
        return max(by_year, key=lambda y: by_year[y])

    assert peak("CUB") == 2015
    haitians = darien("HTI")
    assert haitians[2016] > 10 * haitians[2015] and haitians[2021] > 10 * haitians[2020]
    indians = darien("IND")
    assert min(indians[y] for y in (2017, 2018, 2019)) > 20 * indians[2016]
    for south_asian in ("NPL", "BGD"):
        by_year = darien(south_asian)
        assert sum(by_year[y] for y in range(2015, 2020)) / 5 > 1.5 * by_year[2014]
    assert peak("VEN") in (2022, 2023, 2024) and peak("CHN") in (2023, 2024)
    assert darien("CMR")[2019] > 2 * darien("CMR")[2014]
    air = model.expected_by_nationality("HND", 2023)
    assert peak("AFG") in (2021, 2022, 2023) and air["MRT"] > 0


def test_attenuation_along_the_corridor() -> None:
    model = cal.flow_model()
    darien = model.routes.index("darien")
    chain = model.chains[darien]
    reach = [cal.record_probability(chain, c) / s.detect for c, s in
             ((s.country, s) for s in chain if not s.optional)]  # fmt: skip
    assert reach == sorted(reach, reverse=True) and reach[0] == 1.0


def test_pools_and_local_scripts() -> None:
    for latin, native in cal.CYRILLIC.items():
        assert normalise_name(native) == normalise_name(latin)
    for nationality in cal.flow_model().nationalities:
        group = cal.name_group(nationality)
        surnames = cal.NAME_POOLS[group][0].split()
        assert all(normalise_name(s.replace("_", " ")) for s in surnames)


# --------------------------------------------------------------------------- CLI


def test_cli_generate_json_and_errors(tmp_path: Path) -> None:
    app = typer.Typer()
    generate_cmd.register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    args = ["generate", "--country", "gtm", "--encounters", "500", "--out", str(tmp_path)]
    args += ["--seed", "3"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stderr: the progress
    assert summary["country"] == "GTM" and summary["rows"]["encounters.csv"] == 500
    assert len(read(tmp_path, "encounters.csv")) == 500
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "encounters.csv" in table.output
    bad = runner.invoke(app, ["generate", "--country", "ESP", *args[3:]])
    assert bad.exit_code == 1 and "not a member" in bad.output
