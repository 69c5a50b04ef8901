package auth

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParsePrefixes("10.0.0.0/8, 192.168.1.1")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{}
	s.TrustProxies(proxies...)
	call := func(from string, xff ...string) string {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(from), Port: 40000}})
		if len(xff) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-forwarded-for", xff[0]))
		}
		return s.clientAddr(ctx)
	}
	for _, tc := range []struct {
		from, xff, want string
	}{
		{"203.0.113.7", "", "203.0.113.7"},
		{"203.0.113.7", "198.51.100.1", "203.0.113.7"}, // untrusted peer: header ignored
		{"10.1.2.3", "198.51.100.1", "198.51.100.1"},
		{"10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // a client-set first hop is not believed
		{"192.168.1.1", "garbage", "192.168.1.1"},
		{"10.1.2.3", "", "10.1.2.3"},
	} {
		var got string
		if tc.xff == "" {
			got = call(tc.from)
		} else {
			got = call(tc.from, tc.xff)
		}
		if got != tc.want {
			t.Errorf("from %s with x-forwarded-for %q: %s; want %s", tc.from, tc.xff, got, tc.want)
		}
	}
	if _, err := ParsePrefixes("10.0.0.0/33"); err == nil {
		t.Error("ParsePrefixes accepted a bad prefix")
	}
}
