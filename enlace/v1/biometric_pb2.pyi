from enlace.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BiometricEpochRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BiometricEpochResponse(_message.Message):
    __slots__ = ("epoch", "bits", "dimension", "orthonormal", "key_id")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    ORTHONORMAL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    bits: int
    dimension: int
    orthonormal: bool
    key_id: str
    def __init__(self, epoch: _Optional[int] = ..., bits: _Optional[int] = ..., dimension: _Optional[int] = ..., orthonormal: _Optional[bool] = ..., key_id: _Optional[str] = ...) -> None: ...

class BiometricSearchRequest(_message.Message):
    __slots__ = ("epoch", "key_id", "bits", "codes")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    key_id: str
    bits: int
    codes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, epoch: _Optional[int] = ..., key_id: _Optional[str] = ..., bits: _Optional[int] = ..., codes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ProbeResult(_message.Message):
    __slots__ = ("band", "hit_reference")
    class Band(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        BAND_UNSPECIFIED: _ClassVar[ProbeResult.Band]
        NO_HIT: _ClassVar[ProbeResult.Band]
        PROBABLE: _ClassVar[ProbeResult.Band]
        STRONG: _ClassVar[ProbeResult.Band]
    BAND_UNSPECIFIED: ProbeResult.Band
    NO_HIT: ProbeResult.Band
    PROBABLE: ProbeResult.Band
    STRONG: ProbeResult.Band
    BAND_FIELD_NUMBER: _ClassVar[int]
    HIT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    band: ProbeResult.Band
    hit_reference: str
    def __init__(self, band: _Optional[_Union[ProbeResult.Band, str]] = ..., hit_reference: _Optional[str] = ...) -> None: ...

class BiometricSearchResponse(_message.Message):
    __slots__ = ("epoch", "results", "references_expire_at")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    results: _containers.RepeatedCompositeFieldContainer[ProbeResult]
    references_expire_at: str
    def __init__(self, epoch: _Optional[int] = ..., results: _Optional[_Iterable[_Union[ProbeResult, _Mapping]]] = ..., references_expire_at: _Optional[str] = ...) -> None: ...

class BiometricFollowUpRequest(_message.Message):
    __slots__ = ("hit_reference", "case_reference", "attributes", "followup_id")
    HIT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CASE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    FOLLOWUP_ID_FIELD_NUMBER: _ClassVar[int]
    hit_reference: str
    case_reference: str
    attributes: _containers.RepeatedScalarFieldContainer[str]
    followup_id: str
    def __init__(self, hit_reference: _Optional[str] = ..., case_reference: _Optional[str] = ..., attributes: _Optional[_Iterable[str]] = ..., followup_id: _Optional[str] = ...) -> None: ...
