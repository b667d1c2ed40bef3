from enlace.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("name", "as_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: str
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("country", "name", "roles", "software_version", "protocol_version", "data_as_of", "datasets", "directory_version", "equivalence_table_json", "codelists_version")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EQUIVALENCE_TABLE_JSON_FIELD_NUMBER: _ClassVar[int]
    CODELISTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    country: str
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    software_version: str
    protocol_version: str
    data_as_of: str
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetInfo]
    directory_version: int
    equivalence_table_json: str
    codelists_version: str
    def __init__(self, country: _Optional[str] = ..., name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., software_version: _Optional[str] = ..., protocol_version: _Optional[str] = ..., data_as_of: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[DatasetInfo, _Mapping]]] = ..., directory_version: _Optional[int] = ..., equivalence_table_json: _Optional[str] = ..., codelists_version: _Optional[str] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("payload", "server_time")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    server_time: str
    def __init__(self, payload: _Optional[bytes] = ..., server_time: _Optional[str] = ...) -> None: ...

class GetDirectoryRequest(_message.Message):
    __slots__ = ("known_version",)
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_version: int
    def __init__(self, known_version: _Optional[int] = ...) -> None: ...

class GetDirectoryResponse(_message.Message):
    __slots__ = ("version", "directory_json")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_JSON_FIELD_NUMBER: _ClassVar[int]
    version: int
    directory_json: bytes
    def __init__(self, version: _Optional[int] = ..., directory_json: _Optional[bytes] = ...) -> None: ...
