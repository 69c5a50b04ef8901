package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

// serverConn is the connection every command that talks to gridd or cased
// takes: address, access token and an optional CA for TLS. With a saved
// refresh token (-refresh-file, written by `gridctl users login
// -refresh-out`) it renews the 15-minute access token by itself: before a
// call when the token has run out, and once more when a call is refused
// as Unauthenticated.
type serverConn struct {
	service     string // "gridd" or "cased", for messages
	addr        string
	token       string
	caFile      string
	refreshFile string
	authAddr    string // gridd, which renews tokens; addr when service is gridd
	// noToken is the error when a call needs a token and none was given.
	noToken string

	mu    sync.Mutex
	creds credentials.TransportCredentials
}

// register defines -addr (env addrEnv), -token (ECOGRID_TOKEN), -tls-ca,
// -refresh-file (ECOGRID_REFRESH_FILE) and, for cased, -auth-addr.
func (c *serverConn) register(fs *flag.FlagSet, service, addrEnv, defaultAddr, tokenUsage string) {
	c.service = service
	flagenv.String(fs, &c.addr, "addr", addrEnv, defaultAddr, service+" gRPC address")
	flagenv.Secret(fs, &c.token, "token", "ECOGRID_TOKEN", tokenUsage)
	flagenv.String(fs, &c.caFile, "tls-ca", "ECOGRID_TLS_CA", "", "PEM CA certificate; enables TLS (plaintext without it)")
	flagenv.String(fs, &c.refreshFile, "refresh-file", "ECOGRID_REFRESH_FILE", "",
		"refresh token file (users login -refresh-out): the access token is renewed through it when it runs out")
	if service != "gridd" {
		flagenv.String(fs, &c.authAddr, "auth-addr", "GRIDD_ADDR", "127.0.0.1:7443", "gridd gRPC address, where the access token is renewed")
	}
}

// dial connects; every call on the connection carries the access token
// (renewed as needed). The returned context is ctx.
func (c *serverConn) dial(ctx context.Context, needToken bool) (*grpc.ClientConn, context.Context, error) {
	if needToken && c.token == "" && c.refreshFile == "" {
		msg := c.noToken
		if msg == "" {
			msg = "no access token: set ECOGRID_TOKEN (or ECOGRID_REFRESH_FILE) or pass -token"
		}
		return nil, nil, errors.New(msg)
	}
	creds, err := c.transport()
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds),
		grpc.WithUnaryInterceptor(c.unary), grpc.WithStreamInterceptor(c.stream))
	if err != nil {
		return nil, nil, fmt.Errorf("%s at %s: %w", c.service, c.addr, err)
	}
	return conn, ctx, nil
}

func (c *serverConn) transport() (credentials.TransportCredentials, error) {
	if c.creds != nil {
		return c.creds, nil
	}
	c.creds = insecure.NewCredentials()
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.caFile)
		}
		c.creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	return c.creds, nil
}

// The calls that need no access token, and must not renew one.
func tokenless(method string) bool {
	return strings.HasPrefix(method, "/ecogrid.v1.AuthService/Login") || strings.HasPrefix(method, "/ecogrid.v1.AuthService/Refresh")
}

func (c *serverConn) withToken(ctx context.Context, method string) (context.Context, error) {
	if tokenless(method) {
		return ctx, nil
	}
	tok, err := c.currentToken(ctx)
	if err != nil {
		return nil, err
	}
	if tok == "" {
		return ctx, nil
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), nil
}

func (c *serverConn) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	tctx, err := c.withToken(ctx, method)
	if err != nil {
		return err
	}
	err = invoker(tctx, method, req, reply, cc, opts...)
	if status.Code(err) != codes.Unauthenticated || c.refreshFile == "" || tokenless(method) {
		return err
	}
	// The token ran out (or its session was rotated): renew once, retry once.
	if rerr := c.refresh(ctx); rerr != nil {
		return rerr
	}
	if tctx, err = c.withToken(ctx, method); err != nil {
		return err
	}
	return invoker(tctx, method, req, reply, cc, opts...)
}

func (c *serverConn) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	tctx, err := c.withToken(ctx, method)
	if err != nil {
		return nil, err
	}
	return streamer(tctx, desc, cc, method, opts...)
}

// tokenSlack renews a token this close to its end, so that it does not
// run out between the check and the server's.
const tokenSlack = 30 * time.Second

// currentToken is the access token to send: -token while it lasts, else
// the one saved beside the refresh file, else a newly renewed one.
func (c *serverConn) currentToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	if c.refreshFile == "" || (tok != "" && !tokenExpired(tok, time.Now().Add(tokenSlack))) {
		return tok, nil
	}
	if b, err := os.ReadFile(c.accessFile()); err == nil {
		if saved := strings.TrimSpace(string(b)); saved != "" && !tokenExpired(saved, time.Now().Add(tokenSlack)) {
			c.mu.Lock()
			c.token = saved
			c.mu.Unlock()
			return saved, nil
		}
	}
	if err := c.refresh(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, nil
}

// accessFile holds the last renewed access token beside the refresh
// token, so that the next gridctl command reuses it until it runs out.
func (c *serverConn) accessFile() string { return c.refreshFile + ".access" }

// refresh trades the saved refresh token for a new pair through gridd's
// AuthService.Refresh, and saves both (mode 0600).
func (c *serverConn) refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := os.ReadFile(c.refreshFile)
	if err != nil {
		return fmt.Errorf("renewing the access token: %w", err)
	}
	rt := strings.TrimSpace(string(b))
	if rt == "" {
		return fmt.Errorf("renewing the access token: %s is empty; log in again (gridctl users login -refresh-out %s)", c.refreshFile, c.refreshFile)
	}
	creds, err := c.transport()
	if err != nil {
		return err
	}
	addr := c.authAddr
	if addr == "" {
		addr = c.addr
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("gridd at %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := ecogridv1.NewAuthServiceClient(conn).Refresh(ctx, &ecogridv1.RefreshRequest{RefreshToken: rt})
	if err != nil {
		return err
	}
	t := resp.GetTokens()
	if err := writeSecret(c.refreshFile, t.GetRefreshToken()); err != nil {
		return err
	}
	if err := writeSecret(c.accessFile(), t.GetAccessToken()); err != nil {
		return err
	}
	c.token = t.GetAccessToken()
	return nil
}

// writeSecret replaces path with s (mode 0600), atomically: a crash never
// leaves half a token.
func writeSecret(path, s string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gridctl-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(s + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tokenExpired reads a JWT's exp claim (unverified: the server checks the
// signature) and says whether it ends before at. A token that is not a
// JWT is taken as good; the server decides.
func tokenExpired(tok string, at time.Time) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return false
	}
	return time.Unix(claims.Exp, 0).Before(at)
}
