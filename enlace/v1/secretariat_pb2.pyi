from enlace.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NotifyRequest(_message.Message):
    __slots__ = ("kind", "period", "subject", "body", "language", "reference")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    period: str
    subject: str
    body: str
    language: str
    reference: str
    def __init__(self, kind: _Optional[str] = ..., period: _Optional[str] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., language: _Optional[str] = ..., reference: _Optional[str] = ...) -> None: ...

class NotifyResponse(_message.Message):
    __slots__ = ("notification_id", "received_at")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    received_at: str
    def __init__(self, notification_id: _Optional[str] = ..., received_at: _Optional[str] = ...) -> None: ...

class EmergencyUpdateRequest(_message.Message):
    __slots__ = ("period", "matrices", "reason")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    MATRICES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    period: str
    matrices: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, period: _Optional[str] = ..., matrices: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class EmergencyUpdateResponse(_message.Message):
    __slots__ = ("emergency_id", "pull_started", "detail")
    EMERGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    PULL_STARTED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    emergency_id: str
    pull_started: bool
    detail: str
    def __init__(self, emergency_id: _Optional[str] = ..., pull_started: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class ContributeRequest(_message.Message):
    __slots__ = ("round_id", "matrix", "period", "helper", "layout_sha256", "cells")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    HELPER_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    matrix: str
    period: str
    helper: str
    layout_sha256: str
    cells: int
    def __init__(self, round_id: _Optional[str] = ..., matrix: _Optional[str] = ..., period: _Optional[str] = ..., helper: _Optional[str] = ..., layout_sha256: _Optional[str] = ..., cells: _Optional[int] = ...) -> None: ...

class ContributeResponse(_message.Message):
    __slots__ = ("round_id", "st_share", "as_of", "helper_receipt")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    ST_SHARE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    HELPER_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    st_share: bytes
    as_of: str
    helper_receipt: str
    def __init__(self, round_id: _Optional[str] = ..., st_share: _Optional[bytes] = ..., as_of: _Optional[str] = ..., helper_receipt: _Optional[str] = ...) -> None: ...

class SubmitShareRequest(_message.Message):
    __slots__ = ("round_id", "requester", "matrix", "period", "layout_sha256", "cells", "share")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    requester: str
    matrix: str
    period: str
    layout_sha256: str
    cells: int
    share: bytes
    def __init__(self, round_id: _Optional[str] = ..., requester: _Optional[str] = ..., matrix: _Optional[str] = ..., period: _Optional[str] = ..., layout_sha256: _Optional[str] = ..., cells: _Optional[int] = ..., share: _Optional[bytes] = ...) -> None: ...

class SubmitShareResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: str
    def __init__(self, receipt: _Optional[str] = ...) -> None: ...

class GetSumRequest(_message.Message):
    __slots__ = ("round_id", "members", "layout_sha256")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    members: _containers.RepeatedScalarFieldContainer[str]
    layout_sha256: str
    def __init__(self, round_id: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ..., layout_sha256: _Optional[str] = ...) -> None: ...

class GetSumResponse(_message.Message):
    __slots__ = ("round_id", "members", "sum")
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    round_id: str
    members: _containers.RepeatedScalarFieldContainer[str]
    sum: bytes
    def __init__(self, round_id: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ..., sum: _Optional[bytes] = ...) -> None: ...

class ListConsulatesRequest(_message.Message):
    __slots__ = ("origin_country",)
    ORIGIN_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    origin_country: str
    def __init__(self, origin_country: _Optional[str] = ...) -> None: ...

class ConsularEntry(_message.Message):
    __slots__ = ("origin_country", "host_country", "city", "consulate_name", "address", "phone", "email", "procedures")
    ORIGIN_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    HOST_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    CONSULATE_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PROCEDURES_FIELD_NUMBER: _ClassVar[int]
    origin_country: str
    host_country: str
    city: str
    consulate_name: str
    address: str
    phone: str
    email: str
    procedures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, origin_country: _Optional[str] = ..., host_country: _Optional[str] = ..., city: _Optional[str] = ..., consulate_name: _Optional[str] = ..., address: _Optional[str] = ..., phone: _Optional[str] = ..., email: _Optional[str] = ..., procedures: _Optional[_Iterable[str]] = ...) -> None: ...

class ListConsulatesResponse(_message.Message):
    __slots__ = ("entries", "as_of")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ConsularEntry]
    as_of: str
    def __init__(self, entries: _Optional[_Iterable[_Union[ConsularEntry, _Mapping]]] = ..., as_of: _Optional[str] = ...) -> None: ...
