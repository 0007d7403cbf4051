"""The shared gRPC runtime: server, authentication, rich errors."""

from services.runtime.grpc.auth import (
    AuthenticationInterceptor,
    NoPrincipal,
    current_principal,
    require,
)
from services.runtime.grpc.errors import (
    AlreadyExists,
    ErrorMappingInterceptor,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    abort_invalid,
    abort_not_found,
    abort_permission_denied,
    abort_with_error,
    field_violations,
    maps_errors,
    status_of,
)
from services.runtime.grpc.server import GrpcEndpoint, Register

__all__ = [
    "AlreadyExists",
    "AuthenticationInterceptor",
    "ErrorMappingInterceptor",
    "FailedPrecondition",
    "FieldViolation",
    "GrpcEndpoint",
    "InvalidArgument",
    "NoPrincipal",
    "NotFound",
    "PermissionDenied",
    "Register",
    "ServiceError",
    "abort_invalid",
    "abort_not_found",
    "abort_permission_denied",
    "abort_with_error",
    "current_principal",
    "field_violations",
    "maps_errors",
    "require",
    "status_of",
]
