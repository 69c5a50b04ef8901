package fieldsim

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// errDropped is a connection the simulator cut on purpose.
var errDropped = errors.New("simulated dropped connection")

// retryErr asks do to retry a call whose code alone would not be retried
// (the caller knows why a retry can succeed); the code is recorded as is.
type retryErr struct{ err error }

func (e *retryErr) Error() string { return e.err.Error() }
func (e *retryErr) Unwrap() error { return e.err }

// session is one simulated person's login: the credentials a phone app
// keeps, and the current access token. When a call comes back
// Unauthenticated (the token expired, or gridd restarted with a session
// table that says otherwise) the app logs in again, as a phone would.
type session struct {
	username, password string
	personID           string

	mu    sync.Mutex
	token string
	gen   int // bumped by every login, so concurrent re-logins coalesce
}

func (s *session) current() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token, s.gen
}

// retryable reports whether a phone app retries a call that failed with
// code, with the same request and client ids: the server may or may not
// have acted, and the ids make a second try safe.
func retryable(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}

// do runs one call with retries. f is called with a context carrying the
// session's token and a per-attempt deadline; it must send the same
// request every time. Latency of the successful attempt and the code of
// every failed attempt go to the metrics under rpc. do gives up when ctx
// ends (returning the last error) or on a code that retrying cannot fix.
func (s *Sim) do(ctx context.Context, sess *session, rpc string, f func(ctx context.Context) error) error {
	backoff := 50 * time.Millisecond
	relogins := 0
	for {
		tok, gen := "", 0
		if sess != nil {
			tok, gen = sess.current()
		}
		actx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		if tok != "" {
			actx = metadata.AppendToOutgoingContext(actx, "authorization", "Bearer "+tok)
		}
		start := time.Now()
		err := f(actx)
		cancel()
		if err == nil {
			s.m.ok(rpc, time.Since(start))
			return nil
		}
		if ctx.Err() != nil {
			// Our own deadline, not the server's doing.
			return err
		}
		if errors.Is(err, errDropped) {
			continue // the simulated dead spot: reconnect at once
		}
		var again *retryErr
		forceRetry := errors.As(err, &again)
		if forceRetry {
			err = again.err
		}
		code := status.Code(err)
		s.m.fail(rpc, err)
		switch {
		case forceRetry:
		case code == codes.Unauthenticated && sess != nil && relogins < 3:
			relogins++
			if lerr := s.relogin(ctx, sess, gen); lerr != nil {
				return lerr
			}
			continue
		case !retryable(code):
			return err
		}
		// Full jitter, capped: hundreds of phones must not retry in step.
		d := time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond
		backoff = min(backoff*2, 2*time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

// relogin logs sess in unless someone else did since the token of
// generation seen was handed out.
func (s *Sim) relogin(ctx context.Context, sess *session, seen int) error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.gen != seen && sess.token != "" {
		return nil
	}
	return s.loginLocked(ctx, sess)
}

// login logs sess in (first login).
func (s *Sim) login(ctx context.Context, sess *session) error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return s.loginLocked(ctx, sess)
}

func (s *Sim) loginLocked(ctx context.Context, sess *session) error {
	// argon2id takes 19 MiB and tens of milliseconds per login on the
	// server: bound how many the simulator asks for at once.
	select {
	case s.loginSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.loginSlots }()
	var resp *ecogridv1.LoginResponse
	err := s.do(ctx, nil, "AuthService/Login", func(ctx context.Context) (err error) {
		resp, err = s.auth.Login(ctx, &ecogridv1.LoginRequest{Username: sess.username, Password: sess.password, Device: "fieldsim"})
		return err
	})
	if err != nil {
		return err
	}
	sess.token = resp.GetTokens().GetAccessToken()
	sess.personID = resp.GetPersonId()
	sess.gen++
	return nil
}
