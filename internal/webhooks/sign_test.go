package webhooks_test

import (
	"errors"
	"testing"
	"time"

	"ecogrid/internal/webhooks"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"eventId":"e1"}`)
	sent := time.Unix(1_790_000_000, 0)
	h := webhooks.Sign(secret, sent, body)
	for _, c := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", secret, h, body, sent.Add(3 * time.Second), nil},
		{"replayed later", secret, h, body, sent.Add(10 * time.Minute), webhooks.ErrTimestamp},
		{"altered body", secret, h, []byte(`{"eventId":"e2"}`), sent, webhooks.ErrSignature},
		{"re-signed with another key", secret, webhooks.Sign([]byte("attacker-key-0000000"), sent, body), body, sent, webhooks.ErrSignature},
		{"new timestamp, old signature", secret, "t=1790000100" + h[len("t=1790000000"):], body, sent.Add(100 * time.Second), webhooks.ErrSignature},
		{"no signature", secret, "t=1790000000", body, sent, webhooks.ErrMalformed},
		{"garbage", secret, "hello", body, sent, webhooks.ErrMalformed},
		{"padded timestamp", secret, "t=01790000000" + h[len("t=1790000000"):], body, sent, webhooks.ErrMalformed},
	} {
		if err := webhooks.Verify(c.secret, c.header, c.body, c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef-secret")
	now := time.Unix(1_790_000_000, 0)
	f.Add(webhooks.Sign(secret, now, []byte("x")), []byte("x"))
	f.Add("t=1,v1=00", []byte(""))
	f.Add("v1=,t=,", []byte("body"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := webhooks.Verify(secret, header, body, now, time.Hour)
		if err == nil && webhooks.Verify([]byte("another-secret-0000"), header, body, now, time.Hour) == nil {
			t.Fatalf("header %q verifies under two secrets", header)
		}
		// A signature Sign made always verifies.
		if err := webhooks.Verify(secret, webhooks.Sign(secret, now, body), body, now, 0); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
	})
}
