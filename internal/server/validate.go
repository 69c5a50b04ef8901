package server

import (
	"context"
	"errors"
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"ecogrid/internal/structerr"
)

// The request rules are written in the protos as protovalidate annotations
// (buf.validate.field …): ids are UUIDs, codes match their patterns,
// latitudes and longitudes lie in range, page sizes are bounded, required
// fields are set, enums are defined. One interceptor checks every request
// against them before the handler runs and answers InvalidArgument with a
// google.rpc.BadRequest listing each field violation, so a field app can
// mark the fields to correct. Checks the rules cannot express (a county's
// categories, a patrol's state, cross-field business rules) stay in each
// context's domain code.

// requestRules is the validator; protovalidate compiles each message's
// rules once and caches them.
var requestRules = func() protovalidate.Validator {
	v, err := protovalidate.New()
	if err != nil {
		// Only a broken build (an unparseable rule) can get here.
		panic(fmt.Sprintf("protovalidate: %v", err))
	}
	return v
}()

// maxViolations bounds the details of one refusal; a repeated field with
// ten thousand bad items is told about the first hundred.
const maxViolations = 100

// ValidateRequest checks msg against the rules of its proto and returns nil
// or an InvalidArgument status whose message names the first violation and
// whose BadRequest detail lists them all (field path and description). A
// rule that cannot be evaluated is a bug in the proto: Internal.
func ValidateRequest(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	err := requestRules.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) || len(verr.Violations) == 0 {
		return structerr.NewInternal("checking the request: %v", err)
	}
	return violationStatus(verr.Violations)
}

func violationStatus(vs []*protovalidate.Violation) error {
	br := &errdetails.BadRequest{}
	for i, v := range vs {
		if i == maxViolations {
			break
		}
		field := protovalidate.FieldPathString(v.Proto.GetField())
		desc := describe(v)
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: field, Description: desc, Reason: v.Proto.GetRuleId(),
		})
	}
	first := br.FieldViolations[0]
	msg := "invalid request: " + first.Field + ": " + first.Description
	if first.Field == "" {
		msg = "invalid request: " + first.Description
	}
	if n := len(vs) - 1; n == 1 {
		msg += " (and 1 more problem)"
	} else if n > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", n)
	}
	st := status.New(codes.InvalidArgument, structerr.NewInvalidArgument("%s", msg).Error())
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}

// patternMeaning says in words what the protos' patterns ask for.
var patternMeaning = map[string]string{
	"^[0-9]{6}$":                "must be a 6-digit county code",
	"^[0-9]{6}([0-9]{3}){0,6}$": "must be a grid code: 6 digits for the county, then 3 per level",
	"^[0-9a-fA-F]{64}$":         "must be a SHA-256 hash in 64 hexadecimal digits",
	"^[a-z0-9_]{1,40}$":         "must be 1 to 40 lower-case letters, digits or underscores",
	"^[a-z][a-z0-9_]{0,63}$":    "must be a lower-case identifier (letters, digits, underscores)",
	"^[a-z][a-z_.]{0,39}$":      "must be a lower-case subject type such as case or report",
}

// describe is a violation's description as an app shows it beside the
// field: protovalidate's own text, put in words where it quotes a regular
// expression or an enum number.
func describe(v *protovalidate.Violation) string {
	switch v.Proto.GetRuleId() {
	case "string.pattern":
		if m, ok := patternMeaning[v.RuleValue.String()]; ok {
			return m
		}
	case "string.uuid_empty":
		return "is required (a UUID)"
	case "enum.not_in":
		return "is required (the unspecified value is not accepted)"
	case "enum.defined_only":
		return "is not a value this server knows"
	case "string.min_len":
		if v.RuleValue.IsValid() && v.RuleValue.Uint() == 1 {
			return "is required"
		}
	case "required":
		return "is required"
	}
	if m := v.Proto.GetMessage(); m != "" {
		return m
	}
	return "breaks rule " + v.Proto.GetRuleId()
}

// validateUnary checks each unary request before its handler.
func validateUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := ValidateRequest(req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// validateStream checks each message a client sends on a stream as the
// handler receives it.
func validateStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &validatingStream{ServerStream: ss})
}

type validatingStream struct{ grpc.ServerStream }

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return ValidateRequest(m)
}
