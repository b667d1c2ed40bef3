"""``enlace.v1.StatsService``: peers (and the Secretariat) ask for protected aggregates.

The agreement rule has already checked, before :func:`aggregate` runs, that the dataset,
purpose and every dimension used (as a breakdown *or* as a filter) are granted, and has
counted the query against the quota. The handler applies the grant's disclosure profile.

Invariant: the response carries only protected cells and counts *about the protection*
(cells, suppressions, perturbed cells); the exact number of records read goes to the
holder's audit record only (``Coverage`` field 2 is reserved).
"""

from __future__ import annotations

from crypto.envelope import format_time
from enlace.v1 import stats_pb2
from node.errors import InvalidArgumentError
from node.server.pipeline import Ask, CallContext, MethodSpec
from node.stats.answer import StatsAnswer, answer
from node.stats.matrices import MATRICES_VERSION, matrix
from node.stats.query import StatsQuery, build_query

SERVICE = "enlace.v1.StatsService"


def query_from_request(request: stats_pb2.AggregateRequest) -> StatsQuery:
    """Validate a request; a named matrix fixes dataset, measure, dimensions and filters.

    The request's filters are added to a matrix's; a filter on a dimension the matrix itself
    filters is refused, since replacing the matrix's filter would count something else under
    the matrix's name (M05 with ``event_type=detention`` is not stranded persons).
    """
    filters = {f.dimension: list(f.values) for f in request.filters}
    if request.matrix:
        definition = matrix(request.matrix)
        fixed = sorted(set(filters) & set(definition.filters))
        if fixed:
            raise InvalidArgumentError(
                f"matrix {definition.id} already filters on {', '.join(fixed)}",
                field="filters",
                hint=f"drop the filter on {', '.join(fixed)}, or ask without the matrix",
            )
        merged = {k: list(v) for k, v in definition.filters.items()}
        merged.update(filters)
        return build_query(
            dataset="encounters",
            measure=definition.measure,
            dimensions=definition.dimensions,
            period=request.period,
            filters=merged,
            margins=request.margins,
            matrix=definition.id,
        )
    return build_query(
        dataset=request.dataset or "encounters",
        measure=request.measure or "persons",
        dimensions=list(request.dimensions),
        period=request.period,
        filters=filters,
        margins=request.margins,
    )


def describe(request: stats_pb2.AggregateRequest) -> Ask:
    """What the agreement must grant: the dataset and every dimension broken down or filtered."""
    query = query_from_request(request)
    return Ask(
        dataset=query.dataset,
        dimensions=frozenset(query.dimensions) | frozenset(query.filters),
        units=1,
    )


def to_proto(
    holder: str, result: StatsAnswer, ctx: CallContext | None
) -> stats_pb2.AggregateResponse:
    response = stats_pb2.AggregateResponse(holder=holder, dimensions=list(result.dimensions))
    for cell in result.cells:
        response.cells.add(
            key=list(cell.key),
            value=cell.value or 0,
            has_value=cell.value is not None,
            obs_status=cell.obs_status,
            conf_status=cell.conf_status,
            perturbed=cell.perturbed,
        )
    coverage = response.coverage
    coverage.as_of = format_time(result.as_of) if result.as_of else ""
    coverage.cells = len(result.cells)
    coverage.suppressed_primary = result.suppressed_primary
    coverage.suppressed_secondary = result.suppressed_secondary
    coverage.perturbed = result.perturbed
    coverage.disclosure_profile = f"{result.profile} ({result.method})"
    coverage.epsilon_spent = result.epsilon_spent
    coverage.period = result.period
    coverage.measure = result.measure
    coverage.matrix_version = MATRICES_VERSION
    coverage.note = (
        "Counts of persons are de-duplicated within each cell; totals are sums of cells."
    )
    if ctx is not None:
        coverage.agreement_id = ctx.permit.agreement_id
        coverage.agreement_hash = ctx.permit.agreement_hash
    return response


def aggregate(ctx: CallContext, request: stats_pb2.AggregateRequest) -> stats_pb2.AggregateResponse:
    query = query_from_request(request)
    decision = ctx.permit.decision
    profile = decision.grant.disclosure if decision is not None else None
    result = answer(
        ctx.runtime,
        query,
        profile,
        peer=ctx.peer.country,
        now=ctx.now,
    )
    ctx.audit_extra.update(
        cells=len(result.cells),
        suppressed=result.suppressed_primary + result.suppressed_secondary,
        dimensions=",".join(query.dimensions),
        period=query.period.text,
        # The holder's own record of what was read; the answer itself never carries it.
        records_considered=result.records_considered or 0,
    )
    return to_proto(ctx.runtime.config.country, result, ctx)


def method_specs() -> list[MethodSpec]:
    return [
        MethodSpec(
            f"/{SERVICE}/Aggregate", "stats", stats_pb2.AggregateRequest, aggregate, describe
        )
    ]
