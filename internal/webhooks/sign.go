// Package webhooks delivers case events to departments' own systems
// (issue 16): subscribers per county with a URL, a secret, the event
// types they want and whether they want JSON; signed POSTs with retries
// and exponential backoff, in order per case, once per subscriber (a
// delivery log in PostgreSQL), and replay from a point in time.
//
// Each subscriber has its own durable JetStream consumer on the CASES
// stream, filtered to its county and event types, so a receiver that is
// down only holds back its own deliveries.
package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" where
// the HMAC, keyed with the subscriber's secret, is over
// "<t>.<body>". A receiver recomputes it with Verify.
const SignatureHeader = "Ecogrid-Signature"

// Errors of Verify.
var (
	ErrMalformed = errors.New("webhooks: malformed signature header")
	ErrSignature = errors.New("webhooks: signature does not match the body")
	ErrTimestamp = errors.New("webhooks: signature timestamp outside the tolerance")
)

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a SignatureHeader value against body: one of its v1
// signatures must be the HMAC of its timestamp and body under secret, and
// the timestamp must be within tolerance of now, so a body captured and
// sent again later (replayed) or altered and signed with another key
// (re-signed) is refused. Receivers may copy this function; it uses only
// the standard library.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrMalformed
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrMalformed
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 || len(sigs) > 8 {
		return ErrMalformed
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || strconv.FormatInt(sec, 10) != ts {
		return ErrMalformed
	}
	want := mac(secret, ts, body)
	match := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			match = true
		}
	}
	if !match {
		return ErrSignature
	}
	d := now.Sub(time.Unix(sec, 0))
	if d < 0 {
		d = -d
	}
	if d > tolerance {
		return ErrTimestamp
	}
	return nil
}
