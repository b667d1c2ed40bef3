from enlace.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Filter(_message.Message):
    __slots__ = ("dimension", "values")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    dimension: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dimension: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class AggregateRequest(_message.Message):
    __slots__ = ("dataset", "measure", "dimensions", "filters", "period", "margins", "matrix")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    MARGINS_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    measure: str
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    period: str
    margins: bool
    matrix: str
    def __init__(self, dataset: _Optional[str] = ..., measure: _Optional[str] = ..., dimensions: _Optional[_Iterable[str]] = ..., filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., period: _Optional[str] = ..., margins: _Optional[bool] = ..., matrix: _Optional[str] = ...) -> None: ...

class Cell(_message.Message):
    __slots__ = ("key", "value", "has_value", "obs_status", "conf_status", "perturbed")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    OBS_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONF_STATUS_FIELD_NUMBER: _ClassVar[int]
    PERTURBED_FIELD_NUMBER: _ClassVar[int]
    key: _containers.RepeatedScalarFieldContainer[str]
    value: int
    has_value: bool
    obs_status: str
    conf_status: str
    perturbed: bool
    def __init__(self, key: _Optional[_Iterable[str]] = ..., value: _Optional[int] = ..., has_value: _Optional[bool] = ..., obs_status: _Optional[str] = ..., conf_status: _Optional[str] = ..., perturbed: _Optional[bool] = ...) -> None: ...

class Coverage(_message.Message):
    __slots__ = ("as_of", "cells", "suppressed_primary", "suppressed_secondary", "perturbed", "agreement_id", "agreement_hash", "disclosure_profile", "epsilon_spent", "period", "measure", "note", "emergency_update", "matrix_version")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_PRIMARY_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_SECONDARY_FIELD_NUMBER: _ClassVar[int]
    PERTURBED_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    EPSILON_SPENT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EMERGENCY_UPDATE_FIELD_NUMBER: _ClassVar[int]
    MATRIX_VERSION_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    cells: int
    suppressed_primary: int
    suppressed_secondary: int
    perturbed: int
    agreement_id: str
    agreement_hash: str
    disclosure_profile: str
    epsilon_spent: str
    period: str
    measure: str
    note: str
    emergency_update: bool
    matrix_version: str
    def __init__(self, as_of: _Optional[str] = ..., cells: _Optional[int] = ..., suppressed_primary: _Optional[int] = ..., suppressed_secondary: _Optional[int] = ..., perturbed: _Optional[int] = ..., agreement_id: _Optional[str] = ..., agreement_hash: _Optional[str] = ..., disclosure_profile: _Optional[str] = ..., epsilon_spent: _Optional[str] = ..., period: _Optional[str] = ..., measure: _Optional[str] = ..., note: _Optional[str] = ..., emergency_update: _Optional[bool] = ..., matrix_version: _Optional[str] = ...) -> None: ...

class AggregateResponse(_message.Message):
    __slots__ = ("holder", "dimensions", "cells", "coverage")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    holder: str
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    cells: _containers.RepeatedCompositeFieldContainer[Cell]
    coverage: Coverage
    def __init__(self, holder: _Optional[str] = ..., dimensions: _Optional[_Iterable[str]] = ..., cells: _Optional[_Iterable[_Union[Cell, _Mapping]]] = ..., coverage: _Optional[_Union[Coverage, _Mapping]] = ...) -> None: ...
