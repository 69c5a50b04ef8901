package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"ecogrid/internal/flagenv"
)

// serverConn is the connection every command that talks to gridd or cased
// takes: address, access token and an optional CA for TLS.
type serverConn struct {
	service string // "gridd" or "cased", for messages
	addr    string
	token   string
	caFile  string
	// noToken is the error when a call needs a token and none was given.
	noToken string
}

// register defines -addr (env addrEnv), -token (ECOGRID_TOKEN) and -tls-ca.
func (c *serverConn) register(fs *flag.FlagSet, service, addrEnv, defaultAddr, tokenUsage string) {
	c.service = service
	flagenv.String(fs, &c.addr, "addr", addrEnv, defaultAddr, service+" gRPC address")
	flagenv.Secret(fs, &c.token, "token", "ECOGRID_TOKEN", tokenUsage)
	flagenv.String(fs, &c.caFile, "tls-ca", "ECOGRID_TLS_CA", "", "PEM CA certificate; enables TLS (plaintext without it)")
}

// dial connects, and puts the token (when there is one) on ctx's calls.
func (c *serverConn) dial(ctx context.Context, needToken bool) (*grpc.ClientConn, context.Context, error) {
	if needToken && c.token == "" {
		msg := c.noToken
		if msg == "" {
			msg = "no access token: set ECOGRID_TOKEN or pass -token"
		}
		return nil, nil, errors.New(msg)
	}
	creds := insecure.NewCredentials()
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%s holds no PEM certificate", c.caFile)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, fmt.Errorf("%s at %s: %w", c.service, c.addr, err)
	}
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	return conn, ctx, nil
}
