package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/database"
	"ecogrid/internal/people"
	"ecogrid/internal/structerr"
)

// SessionConfig bounds sessions. A phone may stay offline for days, so a
// refresh token lives for two weeks of inactivity; a session never lasts
// longer than MaxAge, after which the person logs in again.
type SessionConfig struct {
	RefreshTTL time.Duration
	MaxAge     time.Duration
}

// DefaultSessionConfig: refresh tokens valid 14 days, sessions at most 90.
var DefaultSessionConfig = SessionConfig{RefreshTTL: 14 * 24 * time.Hour, MaxAge: 90 * 24 * time.Hour}

// Pool is what the service needs of a pgx pool.
type Pool interface {
	database.TxBeginner
	database.Querier
}

// Service implements AuthService.
type Service struct {
	ecogridv1.UnimplementedAuthServiceServer
	db       Pool
	tokens   *Tokens
	hasher   *password.Hasher
	limits   accounts.Limits
	sessions SessionConfig
	log      *slog.Logger
	proxies  []netip.Prefix
	// changed, when set, is told of a person whose sessions this service
	// just ended (the process's own caller cache forgets them at once).
	changed func(personID string)
}

var _ ecogridv1.AuthServiceServer = (*Service)(nil)

// Hasher is the service's password hasher. Every other user of argon2id
// in the process (people's account creation and password resets) must
// share it, so that -auth-hash-slots bounds the process, not each user.
func (s *Service) Hasher() *password.Hasher { return s.hasher }

// NewService returns the AuthService. hasher bounds concurrent argon2id
// work (password.NewHasher(password.Default, 0)).
func NewService(db Pool, tokens *Tokens, hasher *password.Hasher, limits accounts.Limits, sessions SessionConfig, log *slog.Logger) *Service {
	return &Service{db: db, tokens: tokens, hasher: hasher, limits: limits, sessions: sessions, log: log}
}

var errWrongCredentials = structerr.NewUnauthenticated("wrong username or password")

func lockedError(until time.Time) error {
	return structerr.NewResourceExhausted("too many failed logins: try again after %s UTC, or ask the county grid office to unlock the account",
		until.UTC().Format("15:04"))
}

// clientAddr is the caller's IP address (without port), the key of the
// per-address login limit. When the connection comes from a trusted proxy
// (a gRPC-aware load balancer), the address is the last one in its
// x-forwarded-for header that is not itself a trusted proxy; otherwise the
// header is ignored, so a client cannot pick its own address.
func (s *Service) clientAddr(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host := p.Addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(addr) {
		return host
	}
	md, _ := metadata.FromIncomingContext(ctx)
	hops := strings.Split(strings.Join(md.Get("x-forwarded-for"), ","), ",")
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-16; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

func (s *Service) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TrustProxies makes the service take client addresses for login limits
// from x-forwarded-for when the connection comes from one of prefixes.
func (s *Service) TrustProxies(prefixes ...netip.Prefix) { s.proxies = prefixes }

// Login checks the credentials, throttled per account and per address
// before any hashing is done, and opens a session.
func (s *Service) Login(ctx context.Context, req *ecogridv1.LoginRequest) (*ecogridv1.LoginResponse, error) {
	res, err := s.login(ctx, req.GetUsername(), req.GetPassword(), s.clientAddr(ctx), req.GetDevice(), time.Now())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.LoginResponse{Tokens: res.tokens, PersonId: res.personID, SessionId: res.sessionID}, nil
}

type loginResult struct {
	tokens    *ecogridv1.Tokens
	personID  string
	sessionID string
}

func (s *Service) login(ctx context.Context, username, pw, addr, device string, now time.Time) (loginResult, error) {
	if len(username) > 256 || len(pw) > password.MaxLen {
		return loginResult{}, errWrongCredentials
	}
	user := strings.ToLower(strings.TrimSpace(username))
	acctKey, addrKey := accounts.AccountKey(user), accounts.AddrKey(addr)
	until, err := accounts.LockedUntil(ctx, s.db, acctKey, addrKey)
	if err != nil {
		return loginResult{}, err
	}
	if !until.IsZero() {
		loginFailures.WithLabelValues("locked").Inc()
		return loginResult{}, lockedError(until)
	}
	acct, err := accounts.ByUsername(ctx, s.db, user)
	known := err == nil
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return loginResult{}, err
	}
	var needsRehash bool
	if known {
		needsRehash, err = s.hasher.Verify(pw, acct.PasswordHash)
		if err != nil && !errors.Is(err, password.ErrMismatch) {
			s.log.ErrorContext(ctx, "stored password hash unusable", "account_id", acct.ID, "err", err.Error())
		}
	} else {
		s.hasher.Burn(pw) // same time and memory as a known account
		err = password.ErrMismatch
	}
	if err != nil || acct.DisabledAt != nil {
		// The username is not logged: people type passwords into it.
		s.log.InfoContext(ctx, "login refused", "account_id", acct.ID, "client_addr", addr)
		return loginResult{}, s.failed(ctx, acctKey, addrKey)
	}
	if _, err := accounts.Reset(ctx, s.db, acctKey); err != nil {
		return loginResult{}, err
	}
	if needsRehash {
		if h, err := s.hasher.Hash(pw); err == nil {
			if err := accounts.SetPasswordHash(ctx, s.db, acct.ID, h, false); err != nil {
				s.log.WarnContext(ctx, "password rehash not saved", "account_id", acct.ID, "err", err.Error())
			}
		}
	}
	sid := uuid.NewString()
	var refresh string
	sessionEnd := now.Add(s.sessions.MaxAge)
	refreshEnd := minTime(now.Add(s.sessions.RefreshTTL), sessionEnd)
	err = database.InTx(ctx, s.db, func(tx pgx.Tx) error {
		if err := accounts.CreateSession(ctx, tx, sid, acct.ID, acct.PersonID, sessionEnd, addr, truncate(device, 200)); err != nil {
			return err
		}
		refresh, err = accounts.IssueRefresh(ctx, tx, sid, refreshEnd)
		return err
	})
	if err != nil {
		return loginResult{}, err
	}
	access, accessEnd, err := s.tokens.Issue(acct.ID, acct.PersonID, sid, now)
	if err != nil {
		return loginResult{}, err
	}
	s.log.InfoContext(ctx, "login", "account_id", acct.ID, "session_id", sid)
	return loginResult{
		tokens: &ecogridv1.Tokens{
			AccessToken: access, AccessExpireTime: timestamppb.New(accessEnd),
			RefreshToken: refresh, RefreshExpireTime: timestamppb.New(refreshEnd),
		},
		personID: acct.PersonID, sessionID: sid,
	}, nil
}

// failed counts a failed login against the account and the address.
func (s *Service) failed(ctx context.Context, acctKey, addrKey string) error {
	l := s.limits
	u1, err := accounts.RecordFailure(ctx, s.db, acctKey, l.AccountFailures, l.AccountWindow, l.AccountLockout)
	if err != nil {
		return err
	}
	u2, err := accounts.RecordFailure(ctx, s.db, addrKey, l.AddrFailures, l.AddrWindow, l.AddrLockout)
	if err != nil {
		return err
	}
	loginFailures.WithLabelValues("credentials").Inc()
	// A lock end comes back only from the failure that began the lock:
	// a login while locked is refused above without counting.
	if !u1.IsZero() {
		lockouts.WithLabelValues("account").Inc()
	}
	if !u2.IsZero() {
		lockouts.WithLabelValues("address").Inc()
	}
	if until := maxTime(u1, u2); !until.IsZero() {
		return lockedError(until)
	}
	return errWrongCredentials
}

// Refresh rotates a refresh token.
func (s *Service) Refresh(ctx context.Context, req *ecogridv1.RefreshRequest) (*ecogridv1.RefreshResponse, error) {
	tok := req.GetRefreshToken()
	if tok == "" || len(tok) > accounts.MaxRefreshTokenLen {
		return nil, errBadRefresh
	}
	var sess accounts.Session
	var outcome accounts.RotateOutcome
	var refresh string
	var refreshEnd time.Time
	now := time.Now()
	err := database.InTx(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		sess, refresh, outcome, err = accounts.RotateRefresh(ctx, tx, tok, func(sess accounts.Session) time.Time {
			refreshEnd = minTime(now.Add(s.sessions.RefreshTTL), sess.ExpiresAt)
			return refreshEnd
		})
		return err // a reuse's revocation commits
	})
	if err != nil {
		return nil, err
	}
	switch outcome {
	case accounts.RotateReused:
		s.log.WarnContext(ctx, "refresh token reused: session revoked", "session_id", sess.ID, "account_id", sess.AccountID)
		return nil, errBadRefresh
	case accounts.RotateRefused:
		return nil, errBadRefresh
	}
	access, accessEnd, err := s.tokens.Issue(sess.AccountID, sess.PersonID, sess.ID, now)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.RefreshResponse{Tokens: &ecogridv1.Tokens{
		AccessToken: access, AccessExpireTime: timestamppb.New(accessEnd),
		RefreshToken: refresh, RefreshExpireTime: timestamppb.New(refreshEnd),
	}}, nil
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, _ *ecogridv1.LogoutRequest) (*ecogridv1.LogoutResponse, error) {
	c, err := CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := accounts.RevokeSession(ctx, s.db, c.SessionID, "logout"); err != nil {
		return nil, err
	}
	s.forget(c.PersonID)
	return &ecogridv1.LogoutResponse{}, nil
}

// WhoAmI describes the caller as of now.
func (s *Service) WhoAmI(ctx context.Context, _ *ecogridv1.WhoAmIRequest) (*ecogridv1.WhoAmIResponse, error) {
	c, err := CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	p, err := people.GetPerson(ctx, s.db, c.PersonID)
	if err != nil {
		return nil, err
	}
	a, err := accounts.ByID(ctx, s.db, c.AccountID)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.WhoAmIResponse{Person: people.PersonProto(p), AccountId: a.ID, Username: a.Username, SessionId: c.SessionID}
	for _, g := range c.Grants {
		resp.Grants = append(resp.Grants, &ecogridv1.Grant{Role: people.RoleProto(g.Role), NodeId: g.NodeID, NodeCode: g.NodeCode})
	}
	return resp, nil
}

// ChangePassword replaces the caller's password after checking the current
// one (throttled like a login) and ends the caller's other sessions.
func (s *Service) ChangePassword(ctx context.Context, req *ecogridv1.ChangePasswordRequest) (*ecogridv1.ChangePasswordResponse, error) {
	c, err := CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := password.CheckPolicy(req.GetNewPassword()); err != nil {
		return nil, structerr.NewInvalidArgument("%s", err.Error())
	}
	a, err := accounts.ByID(ctx, s.db, c.AccountID)
	if err != nil {
		return nil, err
	}
	acctKey, addrKey := accounts.AccountKey(a.Username), accounts.AddrKey(s.clientAddr(ctx))
	until, err := accounts.LockedUntil(ctx, s.db, acctKey, addrKey)
	if err != nil {
		return nil, err
	}
	if !until.IsZero() {
		return nil, lockedError(until)
	}
	if len(req.GetCurrentPassword()) > password.MaxLen {
		return nil, s.failedChange(ctx, acctKey, addrKey)
	}
	if _, err := s.hasher.Verify(req.GetCurrentPassword(), a.PasswordHash); err != nil {
		return nil, s.failedChange(ctx, acctKey, addrKey)
	}
	h, err := s.hasher.Hash(req.GetNewPassword())
	if err != nil {
		return nil, err
	}
	err = database.InTx(ctx, s.db, func(tx pgx.Tx) error {
		if err := accounts.SetPasswordHash(ctx, tx, a.ID, h, true); err != nil {
			return err
		}
		return accounts.RevokeSessions(ctx, tx, a.ID, c.SessionID, "password changed")
	})
	if err != nil {
		return nil, err
	}
	s.forget(c.PersonID)
	return &ecogridv1.ChangePasswordResponse{}, nil
}

func (s *Service) forget(personID string) {
	if s.changed != nil {
		s.changed(personID)
	}
}

// ForgetThrough makes the service tell authz's caller cache of the
// sessions it ends (logout, password change), so that this process's next
// call is refused without waiting for the database's change notice.
func (s *Service) ForgetThrough(authz *Authorizer) { s.changed = authz.forget }

func (s *Service) failedChange(ctx context.Context, acctKey, addrKey string) error {
	err := s.failed(ctx, acctKey, addrKey)
	if errors.Is(err, errWrongCredentials) {
		return structerr.NewPermissionDenied("the current password is wrong")
	}
	return err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "")
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
