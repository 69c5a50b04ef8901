package messaging

import (
	"errors"
	"fmt"
	"strings"
)

// Subject layouts, the one place they are written down. The county code
// is a token of every violation and case subject so that subjects, like
// tables and ledger chains, shard by county:
//
//	ecogrid.v1.violations.<county>          violations filed in a county
//	ecogrid.v1.cases.<county>.<event_type>  case workflow events
//	ecogrid.v1.dlq.<STREAM>                 messages a consumer gave up on
//	ecogrid.v1.json.cases.<county>.<type>   case events again as protojson, live only
//
// Other packages build subjects with the functions below and read them
// with ParseSubject; none splits a subject by hand.
const (
	violationsPrefix = "ecogrid.v1.violations."
	casesPrefix      = "ecogrid.v1.cases."
	deadLetterPrefix = "ecogrid.v1.dlq."
	jsonCasesPrefix  = "ecogrid.v1.json.cases."
)

// JSONCaseSubject is where the outbox relay publishes each case event a
// second time, as protojson (Content-Type application/json), for
// departments' systems that do not speak protobuf. It is core NATS, in no
// stream: live only, at most once; the stream (protobuf) and webhooks
// (JSON on request) are the durable ways.
func JSONCaseSubject(countyCode, eventType string) string {
	return jsonCasesPrefix + countyCode + "." + eventType
}

// JSONMirror is the JSONCaseSubject of a case event's subject; ok is
// false for any other subject.
func JSONMirror(subject string) (string, bool) {
	s, err := ParseSubject(subject)
	if err != nil || s.Stream != StreamCases {
		return "", false
	}
	return JSONCaseSubject(s.County, s.EventType), true
}

// ViolationSubject is where violations filed in a county are published.
func ViolationSubject(countyCode string) string { return violationsPrefix + countyCode }

// CaseSubject is where case events of a county are published, one token per event type.
func CaseSubject(countyCode, eventType string) string {
	return casesPrefix + countyCode + "." + eventType
}

// DeadLetterSubject is where a consumer parks a message of stream it gave up on.
func DeadLetterSubject(stream string) string { return deadLetterPrefix + stream }

// StreamSubjects is the NATS wildcard of every subject a stream holds
// (ecogrid.v1.violations.> for VIOLATIONS), for stream definitions,
// consumer filters and permissions; "" for an unknown stream.
func StreamSubjects(stream string) string {
	if p := streamPrefix(stream); p != "" {
		return p + ">"
	}
	return ""
}

// StreamSubjectPrefix is the literal start shared by every subject of a
// stream (ecogrid.v1.violations.), for prefix matches outside NATS such as
// SQL LIKE; "" for an unknown stream.
func StreamSubjectPrefix(stream string) string { return streamPrefix(stream) }

func streamPrefix(stream string) string {
	switch stream {
	case StreamViolations:
		return violationsPrefix
	case StreamCases:
		return casesPrefix
	case StreamDeadLetter:
		return deadLetterPrefix
	}
	return ""
}

// Subject is a parsed ecogrid subject.
type Subject struct {
	// Stream that holds the subject: StreamViolations, StreamCases or
	// StreamDeadLetter.
	Stream string
	// County code of a violation or case event ("" for dead letters).
	County string
	// EventType of a case event (opened, accepted …; "" otherwise).
	EventType string
	// Parked is, for a dead letter, the stream its message came from.
	Parked string
}

// String builds the subject back.
func (s Subject) String() string {
	switch s.Stream {
	case StreamViolations:
		return ViolationSubject(s.County)
	case StreamCases:
		return CaseSubject(s.County, s.EventType)
	case StreamDeadLetter:
		return DeadLetterSubject(s.Parked)
	}
	return ""
}

// ErrUnknownSubject is wrapped by ParseSubject's errors.
var ErrUnknownSubject = errors.New("not an ecogrid subject")

// maxSubjectLen bounds what ParseSubject looks at and quotes back.
const maxSubjectLen = 256

// ParseSubject reads a subject built by this package. Subjects come from
// the network, so anything else — another layout, an empty or wildcard
// token, an overlong subject — is an error wrapping ErrUnknownSubject,
// never a guess.
func ParseSubject(subject string) (Subject, error) {
	bad := func(why string) (Subject, error) {
		q := subject
		if len(q) > 24 { // quoted, a byte may take four
			q = q[:24] + "…"
		}
		return Subject{}, fmt.Errorf("%w: %q %s", ErrUnknownSubject, q, why)
	}
	if len(subject) > maxSubjectLen {
		return bad("is too long")
	}
	var s Subject
	var rest []string
	switch {
	case strings.HasPrefix(subject, violationsPrefix):
		s.Stream, rest = StreamViolations, strings.Split(subject[len(violationsPrefix):], ".")
		if len(rest) != 1 {
			return bad("has not one county token after " + violationsPrefix)
		}
		s.County = rest[0]
	case strings.HasPrefix(subject, casesPrefix):
		s.Stream, rest = StreamCases, strings.Split(subject[len(casesPrefix):], ".")
		if len(rest) != 2 {
			return bad("has not a county and an event type after " + casesPrefix)
		}
		s.County, s.EventType = rest[0], rest[1]
	case strings.HasPrefix(subject, deadLetterPrefix):
		s.Stream, rest = StreamDeadLetter, strings.Split(subject[len(deadLetterPrefix):], ".")
		if len(rest) != 1 || streamPrefix(rest[0]) == "" {
			return bad("does not name a stream after " + deadLetterPrefix)
		}
		s.Parked = rest[0]
	default:
		return bad("has no ecogrid stream prefix")
	}
	for _, tok := range rest {
		if !validToken(tok) {
			return bad("has an empty or wildcard token")
		}
	}
	return s, nil
}

// StreamOf is the stream a subject belongs to, by its prefix alone (the
// relay groups publishes by it); false when no ecogrid stream takes it.
func StreamOf(subject string) (string, bool) {
	for _, stream := range []string{StreamViolations, StreamCases, StreamDeadLetter} {
		if strings.HasPrefix(subject, streamPrefix(stream)) {
			return stream, true
		}
	}
	return "", false
}

// validToken is a literal NATS subject token: not empty, no wildcard, no
// whitespace or control character.
func validToken(tok string) bool {
	if tok == "" {
		return false
	}
	for _, r := range tok {
		if r <= ' ' || r == 0x7f || r == '*' || r == '>' {
			return false
		}
	}
	return true
}
