// Package structerr is ecogrid's one error type that knows its gRPC code.
//
// Domain code returns *Error values (or wraps them with %w); the gRPC
// interceptor in internal/server converts whatever reaches it with ToStatus,
// the single place where database and context errors become gRPC codes.
// Modelled on Gitaly's structerr.
package structerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is an error with a gRPC code and a message safe to show a field app.
type Error struct {
	code  codes.Code
	msg   string
	cause error
	field string // the request field at fault, for a BadRequest detail
}

// MaxMessageBytes bounds a message: a field app shows it as it is, and
// a message built from client input must not grow with that input.
// Longer messages are cut at a character boundary and end in "…".
const MaxMessageBytes = 400

// New returns an error with the given code and a formatted message. A %w verb
// in format wraps the argument, so errors.Is/As still see it.
func New(code codes.Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{code: code, msg: clip(err.Error()), cause: errors.Unwrap(err)}
}

func clip(msg string) string {
	if len(msg) <= MaxMessageBytes {
		return msg
	}
	const ellipsis = "…"
	n := MaxMessageBytes - len(ellipsis)
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n] + ellipsis
}

// NewInvalidArgument reports a request the client must change before retrying.
func NewInvalidArgument(format string, args ...any) *Error {
	return New(codes.InvalidArgument, format, args...)
}

// NewNotFound reports an object that does not exist or is outside the caller's scope.
func NewNotFound(format string, args ...any) *Error { return New(codes.NotFound, format, args...) }

// NewAlreadyExists reports a create whose id is taken by a different object.
func NewAlreadyExists(format string, args ...any) *Error {
	return New(codes.AlreadyExists, format, args...)
}

// NewFailedPrecondition reports a request that is illegal in the object's current state.
func NewFailedPrecondition(format string, args ...any) *Error {
	return New(codes.FailedPrecondition, format, args...)
}

// NewPermissionDenied reports a caller whose role may not make this call at all.
func NewPermissionDenied(format string, args ...any) *Error {
	return New(codes.PermissionDenied, format, args...)
}

// NewUnauthenticated reports a missing, expired or invalid credential.
func NewUnauthenticated(format string, args ...any) *Error {
	return New(codes.Unauthenticated, format, args...)
}

// NewResourceExhausted reports a size or rate limit that was exceeded.
func NewResourceExhausted(format string, args ...any) *Error {
	return New(codes.ResourceExhausted, format, args...)
}

// NewAborted reports a conflict with a concurrent change; the client may retry.
func NewAborted(format string, args ...any) *Error { return New(codes.Aborted, format, args...) }

// NewUnavailable reports a transient failure after which a retry can succeed.
func NewUnavailable(format string, args ...any) *Error {
	return New(codes.Unavailable, format, args...)
}

// NewInternal reports a bug or an unexpected failure; its message is masked
// before it reaches the client.
func NewInternal(format string, args ...any) *Error { return New(codes.Internal, format, args...) }

// Error implements error.
func (e *Error) Error() string { return e.msg }

// WithCause returns a copy of e that wraps cause for logs and errors.Is
// without showing it to the client: the message stays e's.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// WithField names the request field at fault (a path such as
// "observed_at" or "report.position"): the status then carries a
// google.rpc.BadRequest with that field and the message, as the protos'
// request rules do, so an app marks the same field whichever check
// refused it.
func (e *Error) WithField(field string) *Error {
	c := *e
	c.field = field
	return &c
}

// Field is the request field WithField named, or "".
func (e *Error) Field() string { return e.field }

// PrefixField puts prefix before the field err names (a handler knows the
// request path a domain check does not: "report" + "observed_at"). Any
// other error is returned as it is.
func PrefixField(err error, prefix string) error {
	var se *Error
	if !errors.As(err, &se) || se.field == "" {
		return err
	}
	return se.WithField(prefix + "." + se.field)
}

// Unwrap returns the wrapped cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Code returns the gRPC code.
func (e *Error) Code() codes.Code { return e.code }

// GRPCStatus lets status.FromError and status.Code see the code directly.
// An error with a field carries it as a BadRequest detail.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.code, e.msg)
	if e.field == "" {
		return st
	}
	br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: e.field, Description: e.msg}}}
	if d, err := st.WithDetails(br); err == nil {
		return d
	}
	return st
}

// Code returns the gRPC code that ToStatus would give err.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return status.Code(ToStatus(err))
}

// PostgreSQL SQLSTATE codes that have a meaning for the client.
const (
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgCheckViolation       = "23514"
	pgNotNullViolation     = "23502"
	pgExclusionViolation   = "23P01"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgQueryCanceled        = "57014"
	pgAdminShutdown        = "57P01"
	pgCannotConnectNow     = "57P03"
	pgInsufficientPriv     = "42501"
	pgRaiseException       = "P0001"
	pgLockNotAvailable     = "55P03"
	pgInvalidText          = "22P02"
	pgNumericOutOfRange    = "22003"
	pgStringTooLong        = "22001"
	pgBadCharacter         = "22021" // NUL or invalid UTF-8 in text
)

// ToStatus converts any error into a gRPC status error. It is the one place
// where context errors and PostgreSQL errors are given codes:
//   - *Error and anything with GRPCStatus keep their code;
//   - context cancellation and deadlines become Canceled / DeadlineExceeded;
//   - pgx.ErrNoRows becomes NotFound;
//   - unique/exclusion violations AlreadyExists, foreign-key violations
//     FailedPrecondition, check/not-null/invalid-text InvalidArgument,
//     serialization failures and deadlocks Aborted, a cancelled statement
//     DeadlineExceeded, a server shutting down Unavailable;
//   - everything else Internal, with its message masked.
//
// Internal errors are returned with a fixed message; callers log the original.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		if se.code == codes.Internal {
			return status.Error(codes.Internal, "internal error")
		}
		return se.GRPCStatus().Err()
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Err()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, pgx.ErrNoRows):
		return status.Error(codes.NotFound, "not found")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgUniqueViolation, pgExclusionViolation:
			return status.Error(codes.AlreadyExists, "already exists")
		case pgForeignKeyViolation:
			return status.Error(codes.FailedPrecondition, "refers to an object that does not exist")
		case pgCheckViolation, pgNotNullViolation, pgInvalidText, pgNumericOutOfRange, pgStringTooLong:
			return status.Error(codes.InvalidArgument, "invalid value: "+pgErr.ConstraintName)
		case pgBadCharacter:
			return status.Error(codes.InvalidArgument, "text contains a NUL character or invalid UTF-8")
		case pgSerializationFailure, pgDeadlockDetected, pgLockNotAvailable:
			return status.Error(codes.Aborted, "concurrent change, retry")
		case pgQueryCanceled:
			return status.Error(codes.DeadlineExceeded, "statement canceled")
		case pgAdminShutdown, pgCannotConnectNow:
			return status.Error(codes.Unavailable, "database restarting, retry")
		case pgInsufficientPriv, pgRaiseException:
			return status.Error(codes.FailedPrecondition, "refused by the database")
		}
	}
	if pgconn.SafeToRetry(err) || isConnectError(err) || isConnectionLost(err) {
		return status.Error(codes.Unavailable, "database unavailable, retry")
	}
	return status.Error(codes.Internal, "internal error")
}

// isConnectionLost reports a connection cut under a statement: a PostgreSQL
// restart or crash recovery, a network drop. The phone should retry with the
// same ids (every create is idempotent), so this is Unavailable, not Internal.
func isConnectionLost(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &opErr)
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// IsUniqueViolation reports whether err is a PostgreSQL unique violation,
// optionally of the named constraint. Stores use it to turn a replayed
// create into an idempotent result.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgUniqueViolation {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}
