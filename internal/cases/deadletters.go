package cases

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/messaging"
	"ecogrid/internal/structerr"
)

// DeadLetter is a violation event the consumer parked on the DLQ stream,
// with why.
type DeadLetter struct {
	Seq             uint64 // sequence in the DLQ stream: what Replay takes
	At              time.Time
	OriginalSubject string
	OriginalSeq     string // its sequence in the stream it came from
	Reason          string
	Size            int
}

// ListDeadLetters returns up to limit dead letters, oldest first, read
// from the DLQ stream with the cased NATS user's permissions.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, limit int) ([]DeadLetter, error) {
	st, err := js.Stream(ctx, messaging.StreamDeadLetter)
	if err != nil {
		return nil, err
	}
	state := st.CachedInfo().State
	var out []DeadLetter
	for seq := state.FirstSeq; seq <= state.LastSeq && state.Msgs > 0 && (limit <= 0 || len(out) < limit); seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed or discarded
		}
		if err != nil {
			return out, err
		}
		out = append(out, DeadLetter{Seq: m.Sequence, At: m.Time, OriginalSubject: m.Header.Get("Ecogrid-Original-Subject"),
			OriginalSeq: m.Header.Get("Ecogrid-Original-Stream-Seq"), Reason: m.Header.Get("Ecogrid-Dead-Letter-Reason"), Size: len(m.Data)})
	}
	return out, nil
}

// ReplayDeadLetter publishes dead letter seq to the violation subject it
// came from, as its producer wrote it, and removes it from the DLQ once
// JetStream has stored the copy. The consumer then handles it as any
// violation (a case that already exists is found, not opened twice), and
// parks it again if the cause was not fixed. Replaying the same seq twice
// publishes once (the copy's message id is derived from seq).
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (subject string, err error) {
	st, err := js.Stream(ctx, messaging.StreamDeadLetter)
	if err != nil {
		return "", err
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", structerr.NewNotFound("no dead letter %d (replayed or discarded already?)", seq)
	}
	if err != nil {
		return "", err
	}
	subject = m.Header.Get("Ecogrid-Original-Subject")
	if s, err := messaging.ParseSubject(subject); err != nil || s.Stream != messaging.StreamViolations {
		return "", structerr.New(codes.FailedPrecondition, "dead letter %d came from %.60q, not a violation subject: it cannot be replayed", seq, subject)
	}
	msg := nats.NewMsg(subject)
	msg.Data = m.Data
	for k, v := range m.Header {
		if !strings.HasPrefix(k, "Ecogrid-Original-") && k != "Ecogrid-Dead-Letter-Reason" && !strings.HasPrefix(k, "Nats-") {
			msg.Header[k] = v
		}
	}
	msg.Header.Set(jetstream.MsgIDHeader, "replay-"+messaging.StreamDeadLetter+"-"+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return "", err
	}
	if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return subject, err
	}
	return subject, nil
}
