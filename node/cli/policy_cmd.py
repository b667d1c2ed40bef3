"""``enlace policy``: write, sign, verify, show, diff, install, revoke and explain agreements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from enlace.v1 import agreements_pb2
from node.agreements import AgreementBook, party_keys
from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    err_console,
    id_column,
    member_country,
    parse_moment,
    print_json,
    styled,
    text_column,
    warning_line,
)
from node.cli.files import read_text_file
from node.cli.policy_view import grant_rows, grant_terms, grants_table, weakness_lines
from node.client import PeerClient
from node.errors import InvalidArgumentError, PeerError, from_policy
from node.home import NodeHome
from node.runtime import open_runtime
from node.server.agreement_service import SERVICE
from policies.agreement import (
    REVOCATION_FORMAT,
    Agreement,
    Disclosure,
    Grant,
    Perturbation,
    Quotas,
)
from policies.canonical import format_timestamp
from policies.decision import Request
from policies.diff import diff_agreements, who
from policies.errors import AgreementFormatError, PolicyError
from policies.signatures import (
    Revocation,
    SignedAgreement,
    dump_revocation,
    dump_signed_agreement,
    load_signed_agreement,
    sign_agreement,
    sign_revocation,
    verify_agreement,
)
from policies.weaknesses import disclosure_weaknesses

app = typer.Typer(no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="Agreement YAML file.")]


def _read(path: Path) -> Any:
    with _naming(path):
        return load_signed_agreement(read_text_file(path))


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A document that does not parse is named by its file, as ingest names its rows."""
    try:
        yield
    except AgreementFormatError as exc:
        named = from_policy(exc)
        named.message = f"{path}: {named.message}"
        named.args = (named.message,)
        raise named from exc


@app.command("new")
def new(
    agreement_id: Annotated[str, typer.Option("--id", help="Agreement id, e.g. PAN-CRI-2027-01.")],
    parties: Annotated[str, typer.Option(help="The two parties, e.g. PAN,CRI.")],
    out: Annotated[Path, typer.Option(help="YAML file to write.")],
    title: Annotated[str, typer.Option(help="Title (Spanish is fine).")] = "",
    valid_from: Annotated[str, typer.Option(help="ISO date; default today (UTC).")] = "",
    valid_until: Annotated[str, typer.Option(help="ISO date; default one year later.")] = "",
) -> None:
    """Write a draft with one statistics grant in each direction, to edit before signing."""
    with cli_errors():
        named = [p for p in parties.split(",") if p.strip()]
        if len(named) != 2:
            raise InvalidArgumentError(
                f"{parties!r} names {len(named)} parties; an agreement has two",
                field="--parties",
                hint="write the two ISO3 codes separated by a comma, e.g. PAN,CRI",
            )
        a, b = (member_country(p, "--parties") for p in named)
        start = (
            parse_moment(valid_from, "--valid-from")
            if valid_from
            else dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        )
        end = (
            parse_moment(valid_until, "--valid-until")
            if valid_until
            else start + dt.timedelta(days=365)
        )

        def stats(holder: str, requester: str) -> Grant:
            return Grant(
                holder=holder,
                requester=requester,
                service="stats",
                datasets=("encounters",),
                purposes=("quarterly_matrices",),
                dimensions=("quarter", "nationality", "nationality_basis", "event_type"),
                quotas=Quotas(per_day=100, per_quarter=2000),
                # Cell-key noise by default: with a threshold alone, two overlapping queries
                # (periods, filters) difference to one person's cell (disclosure-control.md).
                disclosure=Disclosure(
                    profile="standard",
                    min_cell=5,
                    secondary=True,
                    perturbation=Perturbation(max_noise=2),
                ),
            )

        try:
            draft = Agreement(
                id=agreement_id,
                version=1,
                parties=(a, b),
                title=title or f"Intercambio de información {a}–{b}",
                valid_from=start,
                valid_until=end,
                grants=(stats(a, b), stats(b, a)),
            )
        except PolicyError as exc:
            raise from_policy(exc) from exc
        if out.exists():
            raise InvalidArgumentError(f"{out} exists; refusing to overwrite it")
        out.write_text(dump_signed_agreement(SignedAgreement(draft)), encoding="utf-8")
        console.print(f"draft written to {out}; edit the grants, then `enlace policy sign {out}`")


@app.command("sign")
def sign(
    path: FileArg,
    home: HomeOption,
    out: Annotated[Path | None, typer.Option(help="Write here instead of in place.")] = None,
) -> None:
    """Add this node's signature (its country must be a party); keeps the other one."""
    with cli_errors():
        node_home = NodeHome(home)
        signed = _read(path)
        country = node_home.config().country
        try:
            result = sign_agreement(signed, country, node_home.signing_key())
        except PolicyError as exc:
            raise from_policy(exc) from exc
        (out or path).write_text(dump_signed_agreement(result), encoding="utf-8")
        missing = [p for p in result.agreement.parties if p not in result.signatures]
        console.print(
            f"signed by {country}"
            + (f"; still needs {', '.join(missing)}" if missing else "; both parties have signed")
        )


@app.command("verify")
def verify(path: FileArg, home: HomeOption, as_json: JsonOption = False) -> None:
    """Check both signatures against the federation directory this node holds."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            now = runtime.clock.now()
            signed = _read(path)
            try:
                verified = verify_agreement(signed, party_keys(runtime.directory.current(now)), now)
            except PolicyError as exc:
                raise from_policy(exc) from exc
        finally:
            runtime.close()
        result = {
            "id": verified.id,
            "version": verified.version,
            "hash": verified.hash,
            "signed_by": dict(verified.key_ids),
        }
        if as_json:
            print_json(result)
        else:
            console.print(
                Text.assemble(
                    (f"{verified.agreement.label()} is signed by both parties", "green"),
                    f" (hash {verified.hash})",
                ),
                soft_wrap=True,
            )


@app.command("show")
def show(path: FileArg, as_json: JsonOption = False) -> None:
    """Print an agreement: parties, validity, signatures and every grant."""
    with cli_errors(as_json):
        signed = _read(path)
        agreement = signed.agreement
        weaknesses = disclosure_weaknesses(agreement)
        data = {
            "id": agreement.id,
            "version": agreement.version,
            "title": agreement.title,
            "parties": list(agreement.parties),
            "valid_from": format_timestamp(agreement.valid_from),
            "valid_until": format_timestamp(agreement.valid_until),
            "hash": agreement.hash,
            "signed_by": sorted(signed.signatures),
            "grants": grant_rows(agreement),
            "warnings": [w.to_dict() for w in weaknesses],
        }
        if as_json:
            print_json(data)
            return
        console.print(Text.assemble((agreement.label(), "bold"), f" — {agreement.title}"))
        console.print(
            f"parties {' ↔ '.join(agreement.parties)}; valid {data['valid_from']} → "
            f"{data['valid_until']}; signed by {', '.join(data['signed_by']) or 'nobody yet'}"
        )
        console.print(grants_table(data["grants"]))
        for line in [*grant_terms(agreement), *weakness_lines(weaknesses)]:
            console.print(line)


@app.command("diff")
def diff(old: FileArg, new: FileArg, as_json: JsonOption = False) -> None:
    """What changed between two versions, in sentences a legal officer can read."""
    with cli_errors(as_json):
        sentences = diff_agreements(_read(old).agreement, _read(new).agreement)
        if as_json:
            print_json(sentences)
        else:
            for sentence in sentences or ["The two documents grant exactly the same."]:
                console.print(f"• {sentence}", highlight=False)


@app.command("install")
def install(
    path: Annotated[Path, typer.Argument(help="Signed agreement or revocation YAML.")],
    home: HomeOption,
) -> None:
    """Verify and install an agreement (or a revocation) at this node.

    Says what it did: installed, already installed, re-signed (the same text with newly
    verified signatures replaces the stored ones), or for a revocation whether it brings the
    end of the agreement forward (the earliest revocation always wins).
    """
    with cli_errors():
        runtime = open_runtime(NodeHome(home))
        try:
            with _naming(path):
                text = read_text_file(path)
                message = AgreementBook(runtime).install_text(text, runtime.clock.now())
            me = runtime.config.country
        finally:
            runtime.close()
        console.print(message)
        if REVOCATION_FORMAT not in text:  # an agreement: what it leaves open to requesters
            agreement = load_signed_agreement(text).agreement
            for weakness in disclosure_weaknesses(agreement, holder=me):
                err_console.print(warning_line("warning:", weakness.line()), soft_wrap=True)


@app.command("list")
def list_(home: HomeOption, as_json: JsonOption = False) -> None:
    """Installed agreements and whether each is in force now."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            rows = AgreementBook(runtime).status(runtime.clock.now())
        finally:
            runtime.close()
        data: list[dict[str, Any]] = [
            {
                "id": r.agreement_id,
                "version": r.version,
                "hash": r.agreement_hash,
                "parties": list(r.parties),
                "valid_from": format_timestamp(r.valid_from),
                "valid_until": format_timestamp(r.valid_until),
                "state": r.state,
                "grants": r.grants,
            }
            for r in rows
        ]
        if as_json:
            print_json(data)
            return
        table = FittedTable(title="Agreements")
        id_column(table, "id")
        for column in ("v", "parties", "valid until", "state"):
            text_column(table, column)
        for r in data:
            state = r["state"]
            table.add_row(
                r["id"],
                str(r["version"]),
                " ↔ ".join(r["parties"]),
                r["valid_until"][:10],
                styled(state, "green" if state == "in force" else "red"),
            )
        console.print(table)


@app.command("revoke")
def revoke(
    agreement_id: Annotated[str, typer.Argument(help="Id of the agreement to revoke.")],
    home: HomeOption,
    reason: Annotated[str, typer.Option(help="Why (recorded in the signed revocation).")],
    out: Annotated[Path, typer.Option(help="Revocation file to send to the other party.")],
) -> None:
    """Unilaterally revoke an installed agreement: signed, installed here, written to a file."""
    with cli_errors():
        runtime = open_runtime(NodeHome(home))
        try:
            book = AgreementBook(runtime)
            document = book.signed_document(agreement_id)
            if document is None:
                raise InvalidArgumentError(f"no installed agreement {agreement_id!r}")
            agreement = load_signed_agreement(document).agreement
            now = runtime.clock.now()
            signed = sign_revocation(
                Revocation.for_agreement(agreement, runtime.config.country, now, reason),
                runtime.signing_key,
            )
            text = dump_revocation(signed)
            book.install_text(text, now)
        finally:
            runtime.close()
        out.write_text(text, encoding="utf-8")
        other = agreement.other_party(runtime.config.country)
        console.print(f"{agreement.label()} revoked; send {out} to {other}")


@app.command("fetch")
def fetch(
    agreement_id: Annotated[str, typer.Argument(help="Agreement id.")],
    home: HomeOption,
    peer: Annotated[str, typer.Option(help="The other party (ISO3).")],
    install_it: Annotated[
        bool, typer.Option("--install", help="Install it if it verifies.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the YAML here.")] = None,
) -> None:
    """Fetch the countersigned copy from the other party over the signed channel."""
    with cli_errors():
        runtime = open_runtime(NodeHome(home))
        try:
            with PeerClient(runtime, peer.upper()) as client:
                reply = client.call(
                    f"/{SERVICE}/GetAgreement",
                    agreements_pb2.GetAgreementRequest(agreement_id=agreement_id),
                    agreements_pb2.GetAgreementResponse,
                )
            text = reply.message.document
            fetched = load_signed_agreement(text).agreement
            _check_fetched(fetched, agreement_id, runtime.config.country, peer.upper())
            message = f"{fetched.label()} fetched from {peer.upper()}"
            if out:
                out.write_text(text, encoding="utf-8")
                message += f", written to {out}"
            if install_it:
                message = AgreementBook(runtime).install_text(text, runtime.clock.now())
        finally:
            runtime.close()
        console.print(message)


def _check_fetched(fetched: Agreement, asked: str, me: str, peer: str) -> None:
    """The document a peer sent for ``asked`` is that agreement, between it and this node:
    nothing else is written to ``--out`` or installed in its name."""
    problems = []
    if fetched.id != asked:
        problems.append(f"it is agreement {fetched.id!r}, not {asked!r}")
    if not {me, peer} <= set(fetched.parties):
        problems.append(f"its parties are {', '.join(fetched.parties)}, not {me} and {peer}")
    if problems:
        raise PeerError(
            f"{peer} answered with another agreement: {'; '.join(problems)}",
            peer=peer,
            status_name="INVALID_ARGUMENT",
            hint=f"nothing was written or installed; ask {peer}'s operator which id to fetch",
        )


@app.command("explain")
def explain(
    home: HomeOption,
    peer: Annotated[str, typer.Option(help="The other node (ISO3).")],
    service: Annotated[str, typer.Option(help="stats, match, biometric, followup, directory.")],
    dataset: Annotated[str, typer.Option(help="Dataset asked for.")],
    purpose: Annotated[str, typer.Option(help="Purpose stated in the request.")],
    dimensions: Annotated[str, typer.Option(help="Comma-separated (stats).")] = "",
    attributes: Annotated[str, typer.Option(help="Comma-separated (followup).")] = "",
    agreement: Annotated[str, typer.Option(help="Agreement the request names, if any.")] = "",
    outgoing: Annotated[
        bool, typer.Option("--outgoing", help="Explain what THIS node may ask of the peer.")
    ] = False,
    at: Annotated[str, typer.Option(help="Evaluate at this UTC time instead of now.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Say which rule allows a described request, or every reason it is denied."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            me, other = runtime.config.country, peer.upper()
            now = parse_moment(at, "--at") if at else runtime.clock.now()
            request = Request(
                requester=me if outgoing else other,
                holder=other if outgoing else me,
                service=service,
                dataset=dataset,
                purpose=purpose,
                dimensions=frozenset(d for d in dimensions.split(",") if d),
                attributes=frozenset(a for a in attributes.split(",") if a),
                agreement_id=agreement or None,
            )
            explanation = AgreementBook(runtime).current(now).explain(request, now)
        finally:
            runtime.close()
        if as_json:
            print_json(
                {
                    "allowed": explanation.allowed,
                    "lines": list(explanation.lines),
                    "reasons": [
                        {"element": r.element, "message": r.message, "hint": r.hint}
                        for r in explanation.reasons
                    ],
                }
            )
        else:
            colour = "green" if explanation.allowed else "red"
            verdict = "ALLOWED" if explanation.allowed else "DENIED"
            console.print(
                Text.assemble(
                    (verdict, f"bold {colour}"),
                    f": {who(request.requester)} → {who(request.holder)}",
                )
            )
            for line in explanation.lines:
                console.print(f"  {line}", highlight=False)
        if not explanation.allowed:
            raise typer.Exit(1)
