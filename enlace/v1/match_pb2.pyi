from enlace.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedManifest(_message.Message):
    __slots__ = ("body", "signature", "key_id")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    key_id: str
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class GetManifestRequest(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    def __init__(self, dataset: _Optional[str] = ...) -> None: ...

class GetManifestResponse(_message.Message):
    __slots__ = ("manifest",)
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    manifest: SignedManifest
    def __init__(self, manifest: _Optional[_Union[SignedManifest, _Mapping]] = ...) -> None: ...

class SyncFilterRequest(_message.Message):
    __slots__ = ("dataset", "epoch", "have_version", "chunk_size")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HAVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    epoch: int
    have_version: int
    chunk_size: int
    def __init__(self, dataset: _Optional[str] = ..., epoch: _Optional[int] = ..., have_version: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class FilterChunk(_message.Message):
    __slots__ = ("kind", "manifest", "total_size", "payload_sha256", "index", "count", "data")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[FilterChunk.Kind]
        FULL: _ClassVar[FilterChunk.Kind]
        DELTA: _ClassVar[FilterChunk.Kind]
    KIND_UNSPECIFIED: FilterChunk.Kind
    FULL: FilterChunk.Kind
    DELTA: FilterChunk.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SHA256_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    kind: FilterChunk.Kind
    manifest: SignedManifest
    total_size: int
    payload_sha256: str
    index: int
    count: int
    data: bytes
    def __init__(self, kind: _Optional[_Union[FilterChunk.Kind, str]] = ..., manifest: _Optional[_Union[SignedManifest, _Mapping]] = ..., total_size: _Optional[int] = ..., payload_sha256: _Optional[str] = ..., index: _Optional[int] = ..., count: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("dataset", "epoch", "blinded_elements")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BLINDED_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    epoch: int
    blinded_elements: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, dataset: _Optional[str] = ..., epoch: _Optional[int] = ..., blinded_elements: _Optional[_Iterable[bytes]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("evaluated_elements", "proof", "epoch", "filter_version")
    EVALUATED_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FILTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    evaluated_elements: _containers.RepeatedScalarFieldContainer[bytes]
    proof: bytes
    epoch: int
    filter_version: int
    def __init__(self, evaluated_elements: _Optional[_Iterable[bytes]] = ..., proof: _Optional[bytes] = ..., epoch: _Optional[int] = ..., filter_version: _Optional[int] = ...) -> None: ...

class FollowUpRequest(_message.Message):
    __slots__ = ("dataset", "epoch", "output", "case_reference", "attributes", "followup_id")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CASE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    FOLLOWUP_ID_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    epoch: int
    output: bytes
    case_reference: str
    attributes: _containers.RepeatedScalarFieldContainer[str]
    followup_id: str
    def __init__(self, dataset: _Optional[str] = ..., epoch: _Optional[int] = ..., output: _Optional[bytes] = ..., case_reference: _Optional[str] = ..., attributes: _Optional[_Iterable[str]] = ..., followup_id: _Optional[str] = ...) -> None: ...

class Attribute(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class FollowUpResponse(_message.Message):
    __slots__ = ("followup_id", "status", "attributes", "reason")
    FOLLOWUP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    followup_id: str
    status: str
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    reason: str
    def __init__(self, followup_id: _Optional[str] = ..., status: _Optional[str] = ..., attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...
