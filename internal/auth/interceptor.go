// Package auth authenticates every gRPC call and authorizes it in one place.
//
// A call carries a short-lived Ed25519-signed access token ("authorization:
// Bearer <jwt>"). The interceptor checks the token, then loads whether the
// session is still live and which grants (role at grid node) the person
// holds right now; those grants, never the token, go into scope.Caller.
// Without RunCache they are read from the database on every call; with it
// (gridd and cased) from a per-session cache that PostgreSQL's change
// notices keep current (cache.go), so ending an assignment or a session
// takes effect on the first call after its notice arrives. The Policy table says which
// roles may call each RPC (deny by default); services then check each object
// against the caller's grid subtree and answer NotFound outside it (see
// CheckScope).
//
// AuthService (login, refresh with rotating refresh tokens stored only as
// hashes, logout, who-am-i, password change) lives here too. It owns no
// tables: accounts, sessions, refresh tokens and login throttling are
// internal/accounts', password hashing is accounts/password.
//
// Layer: above people and accounts (whose Go API it calls: ActiveGrants,
// SessionLive, ByUsername …), beside field and cases, below gridd and
// cased, which install its interceptor.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"ecogrid/internal/database"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Authorizer is the auth step of the interceptor chain (after logging and
// metrics, before validation): token → scope.Caller → policy.
type Authorizer struct {
	tokens *Tokens
	db     database.Querier
	log    *slog.Logger
	policy map[string]Rule
	// cache, once RunCache runs, answers session liveness and grants
	// between change notices.
	cache atomic.Pointer[callerCache]
}

// NewAuthorizer returns the interceptors' logic. db is read on every call
// (session liveness and current grants).
func NewAuthorizer(tokens *Tokens, db database.Querier, log *slog.Logger) *Authorizer {
	return &Authorizer{tokens: tokens, db: db, log: log, policy: Policy}
}

// Unary is the unary server interceptor.
func (a *Authorizer) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// Stream is the stream server interceptor.
func (a *Authorizer) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return h(srv, &callerStream{ServerStream: ss, ctx: ctx})
	}
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

// Authorize decides a call to method: it returns ctx carrying the Caller,
// or an Unauthenticated error (no or bad token, ended session) or a
// PermissionDenied error (the caller's roles may never call the method, or
// the method has no rule). Errors are gRPC status errors.
func (a *Authorizer) Authorize(ctx context.Context, method string) (context.Context, error) {
	rule, ok := a.policy[method]
	if !ok {
		a.log.WarnContext(ctx, "call to method without access rule refused", "method", method)
		return nil, structerr.ToStatus(structerr.NewPermissionDenied("this call is not allowed"))
	}
	if rule.Public {
		return ctx, nil
	}
	caller, err := a.Authenticate(ctx, bearer(ctx))
	if err != nil {
		return nil, structerr.ToStatus(err)
	}
	if !rule.Allows(caller) {
		return nil, structerr.ToStatus(structerr.NewPermissionDenied("your role may not make this call"))
	}
	return scope.NewContext(ctx, caller), nil
}

// Authenticate checks token and loads the caller's session and grants as
// they are now.
func (a *Authorizer) Authenticate(ctx context.Context, token string) (scope.Caller, error) {
	if token == "" {
		return scope.Caller{}, structerr.NewUnauthenticated("this call needs an access token; log in first")
	}
	claims, err := a.tokens.Parse(token)
	if err != nil {
		a.log.DebugContext(ctx, "access token refused", "err", err.Error(), "cause", errors.Unwrap(err))
		return scope.Caller{}, err
	}
	caller := scope.Caller{PersonID: claims.PersonID, AccountID: claims.Subject, SessionID: claims.SessionID}
	c := a.cache.Load()
	if c == nil {
		live, grants, err := loadCaller(ctx, a.db, claims.SessionID, claims.Subject, claims.PersonID)
		if err != nil {
			return scope.Caller{}, err
		}
		if !live {
			return scope.Caller{}, errBadRefresh
		}
		caller.Grants = grants
		return caller, nil
	}
	now := time.Now()
	key := cacheKey(claims.SessionID, claims.Subject, claims.PersonID)
	grants, ok, gen, usable := c.get(key, now)
	if ok {
		caller.Grants = grants
		return caller, nil
	}
	live, grants, until, err := loadCallerUntil(ctx, a.db, claims.SessionID, claims.Subject, claims.PersonID, now)
	if err != nil {
		return scope.Caller{}, err
	}
	if !live {
		return scope.Caller{}, errBadRefresh
	}
	if usable {
		c.put(key, claims.PersonID, grants, minTime(until, now.Add(c.cfg.TTL)), gen)
	}
	caller.Grants = grants
	return caller, nil
}

// forget drops the cached answers of person at once, for changes made by
// this process (a logout, a password change): its own next call must not
// wait for the change notice.
func (a *Authorizer) forget(person string) {
	if c := a.cache.Load(); c != nil {
		c.invalidate(person)
	}
}

// bearer returns the token of the authorization header, or "". Only the
// first value is looked at; its length is bounded by Parse.
func bearer(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	v := md.Get("authorization")
	if len(v) == 0 {
		return ""
	}
	const prefix = "bearer "
	if len(v[0]) < len(prefix) || !strings.EqualFold(v[0][:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(v[0][len(prefix):])
}

// CallerFrom returns the caller of an authenticated call; services use it
// first thing in every handler.
func CallerFrom(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return scope.Caller{}, structerr.NewUnauthenticated("this call needs an access token; log in first")
	}
	return c, nil
}

// CheckScope is the object scope check every service makes: the object at
// grid code is visible to the caller under one of roles (any role when
// empty), or the answer is NotFound, so that ids of other places cannot be
// probed. what names the object kind in the message ("report", "case").
func CheckScope(c scope.Caller, code, what string, roles ...scope.Role) error {
	if code != "" && c.Covers(code, roles...) {
		return nil
	}
	return structerr.NewNotFound("%s not found", what)
}

// ScopeRoots returns the grid code prefixes a list query must filter by;
// an empty result means the caller sees nothing (answer an empty list), a
// single "" means everything (administrator).
func ScopeRoots(c scope.Caller, roles ...scope.Role) []string { return c.Roots(roles...) }
