package structerr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/structerr"
)

func TestToStatusMapsEveryKindOfError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
		msg  string // the message must not leak when empty
	}{
		{"domain error keeps its code", structerr.NewInvalidArgument("latitude %v is out of range", 91), codes.InvalidArgument, "latitude 91 is out of range"},
		{"wrapped domain error", fmt.Errorf("submitting: %w", structerr.NewNotFound("report not found")), codes.NotFound, "report not found"},
		{"internal is masked", structerr.NewInternal("secret %s", "dsn"), codes.Internal, "internal error"},
		{"bare error is masked", errors.New("password=hunter2"), codes.Internal, "internal error"},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded, ""},
		{"canceled", context.Canceled, codes.Canceled, ""},
		{"no rows", pgx.ErrNoRows, codes.NotFound, ""},
		{"unique violation", &pgconn.PgError{Code: "23505"}, codes.AlreadyExists, ""},
		{"foreign key", &pgconn.PgError{Code: "23503"}, codes.FailedPrecondition, ""},
		{"check violation", &pgconn.PgError{Code: "23514", ConstraintName: "x"}, codes.InvalidArgument, ""},
		{"NUL in text", &pgconn.PgError{Code: "22021"}, codes.InvalidArgument, "text contains a NUL character or invalid UTF-8"},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, codes.Aborted, ""},
		{"statement canceled", &pgconn.PgError{Code: "57014"}, codes.DeadlineExceeded, ""},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, codes.Unavailable, ""},
		{"connection cut mid-statement", fmt.Errorf("insert: %w", io.ErrUnexpectedEOF), codes.Unavailable, ""},
		{"status error kept", status.Error(codes.ResourceExhausted, "too many"), codes.ResourceExhausted, "too many"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(structerr.ToStatus(tc.err))
			if st.Code() != tc.want {
				t.Fatalf("code %v, want %v (%v)", st.Code(), tc.want, tc.err)
			}
			if tc.msg != "" && st.Message() != tc.msg {
				t.Fatalf("message %q, want %q", st.Message(), tc.msg)
			}
		})
	}
	if structerr.ToStatus(nil) != nil {
		t.Fatal("nil error became a status")
	}
	if !structerr.IsUniqueViolation(fmt.Errorf("x: %w", &pgconn.PgError{Code: "23505", ConstraintName: "reports_pkey"}), "reports_pkey") {
		t.Fatal("IsUniqueViolation missed a wrapped unique violation")
	}
}

func TestWithCauseKeepsMessage(t *testing.T) {
	base := structerr.NewUnauthenticated("log in again")
	cause := errors.New("token is expired")
	err := base.WithCause(cause)
	if !errors.Is(err, cause) {
		t.Error("errors.Is does not see the cause")
	}
	st := status.Convert(structerr.ToStatus(err))
	if st.Code() != codes.Unauthenticated || st.Message() != "log in again" {
		t.Errorf("client sees %v %q; want Unauthenticated %q", st.Code(), st.Message(), "log in again")
	}
	if base.Unwrap() != nil {
		t.Error("WithCause changed the original error")
	}
}

func TestLongMessagesAreCut(t *testing.T) {
	long := structerr.NewInvalidArgument("name %s is too long", strings.Repeat("长", 500))
	msg := long.Error()
	if len(msg) > structerr.MaxMessageBytes || !utf8.ValidString(msg) || !strings.HasSuffix(msg, "…") || !strings.HasPrefix(msg, "name 长长") {
		t.Errorf("cut message: %d bytes, %q", len(msg), msg)
	}
	if short := structerr.NewInvalidArgument("name %s is too long", "x").Error(); short != "name x is too long" {
		t.Errorf("short message changed: %q", short)
	}
}

// An error naming its field carries a BadRequest with it, through ToStatus
// and with a prefix a handler adds; one without stays a plain status.
func TestWithFieldCarriesBadRequest(t *testing.T) {
	err := structerr.PrefixField(structerr.NewInvalidArgument("observed_at is missing").WithField("observed_at"), "report")
	st := status.Convert(structerr.ToStatus(fmt.Errorf("filing: %w", err)))
	if st.Code() != codes.InvalidArgument || len(st.Details()) != 1 {
		t.Fatalf("%v %v", st, st.Details())
	}
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	if !ok || br.GetFieldViolations()[0].GetField() != "report.observed_at" || br.GetFieldViolations()[0].GetDescription() != "observed_at is missing" {
		t.Fatalf("detail %v", st.Details()[0])
	}
	if st := status.Convert(structerr.ToStatus(structerr.NewInvalidArgument("plain"))); len(st.Details()) != 0 {
		t.Fatalf("plain error with details %v", st.Details())
	}
}
