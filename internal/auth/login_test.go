package auth_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/auth"
	"ecogrid/internal/scope"
)

func (h *harness) login(user, pw string) (*ecogridv1.LoginResponse, error) {
	return h.auth.Login(context.Background(), &ecogridv1.LoginRequest{Username: user, Password: pw, Device: "test phone"})
}

func TestLoginRefreshLogout(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	insp := h.callers[scope.RoleInspector]
	resp, err := h.login("  "+insp.Username+"  ", insp.Password)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if resp.GetPersonId() != insp.Person.ID || resp.GetTokens().GetAccessToken() == "" || resp.GetTokens().GetRefreshToken() == "" {
		t.Fatalf("Login = %v", resp)
	}
	if exp := resp.GetTokens().GetAccessExpireTime().AsTime(); exp.After(time.Now().Add(testTokenConfig.AccessTTL)) || exp.Before(time.Now()) {
		t.Fatalf("access token expires at %v; want within %v", exp, testTokenConfig.AccessTTL)
	}
	// The refresh token is stored only as a hash.
	var stored int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = convert_to($1, 'UTF8')`,
		resp.GetTokens().GetRefreshToken()).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("refresh token stored in clear: %d, %v", stored, err)
	}
	ctx := withToken(context.Background(), resp.GetTokens().GetAccessToken())
	who, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{})
	if err != nil || who.GetUsername() != insp.Username || who.GetSessionId() != resp.GetSessionId() ||
		len(who.GetGrants()) != 1 || who.GetGrants()[0].GetNodeCode() != insp.Assignment.NodeCode {
		t.Fatalf("WhoAmI = %v, %v", who, err)
	}

	// Rotation: each refresh token works once.
	refresh := func(tok string) (*ecogridv1.RefreshResponse, error) {
		return h.auth.Refresh(context.Background(), &ecogridv1.RefreshRequest{RefreshToken: tok})
	}
	r1 := resp.GetTokens().GetRefreshToken()
	rot, err := refresh(r1)
	if err != nil || rot.GetTokens().GetRefreshToken() == r1 {
		t.Fatalf("Refresh = %v, %v; want a new refresh token", rot, err)
	}
	r2 := rot.GetTokens().GetRefreshToken()
	// The phone lost that answer and retries with r1 within the grace
	// period: it gets a fresh successor, and the lost r2 is withdrawn.
	retry, err := refresh(r1)
	if err != nil {
		t.Fatalf("retried Refresh within the grace period: %v", err)
	}
	r3 := retry.GetTokens().GetRefreshToken()
	if r3 == r2 || r3 == r1 {
		t.Fatal("the retry did not get a new refresh token")
	}
	ctx3 := withToken(context.Background(), retry.GetTokens().GetAccessToken())
	if _, err := h.auth.WhoAmI(ctx3, &ecogridv1.WhoAmIRequest{}); err != nil {
		t.Fatalf("WhoAmI with the refreshed token: %v", err)
	}
	rot4, err := refresh(r3)
	if err != nil {
		t.Fatalf("Refresh with the retry's token: %v", err)
	}
	r4 := rot4.GetTokens().GetRefreshToken()
	// Now r1's successor has been used: presenting r1 again is a replay
	// (a thief), which ends the whole family: the replay, the newest
	// refresh token and the session's access tokens all stop working.
	if _, err := refresh(r1); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Refresh with a used token = %v; want Unauthenticated", err)
	}
	if _, err := refresh(r4); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Refresh with the family's newest token after a reuse = %v; want Unauthenticated", err)
	}
	if _, err := h.auth.WhoAmI(ctx3, &ecogridv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("access token of a revoked family = %v; want Unauthenticated", err)
	}

	// Outside the grace period even an unused successor does not save a
	// replayed token.
	resp2, err := h.login(insp.Username, insp.Password)
	if err != nil {
		t.Fatal(err)
	}
	old := resp2.GetTokens().GetRefreshToken()
	fresh, err := refresh(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(context.Background(), `UPDATE auth.refresh_tokens SET rotated_at = rotated_at - interval '1 minute'
		WHERE rotated_at IS NOT NULL AND session_id = $1`, resp2.GetSessionId()); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh(old); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("replay after the grace period = %v; want Unauthenticated", err)
	}
	if _, err := refresh(fresh.GetTokens().GetRefreshToken()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("successor after a late replay = %v; want Unauthenticated (family revoked)", err)
	}
	for _, bad := range []string{"", "x", string(make([]byte, 10000))} {
		if _, err := h.auth.Refresh(context.Background(), &ecogridv1.RefreshRequest{RefreshToken: bad}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("Refresh(%d bytes of junk) = %v; want Unauthenticated", len(bad), err)
		}
	}

	// Logout ends a fresh session and its refresh token.
	resp, err = h.login(insp.Username, insp.Password)
	if err != nil {
		t.Fatal(err)
	}
	ctx = withToken(context.Background(), resp.GetTokens().GetAccessToken())
	if _, err := h.auth.Logout(ctx, &ecogridv1.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.auth.Refresh(context.Background(), &ecogridv1.RefreshRequest{RefreshToken: resp.GetTokens().GetRefreshToken()}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Refresh after logout = %v; want Unauthenticated", err)
	}
}

func TestLoginLockoutAndUnlock(t *testing.T) {
	limits := accounts.DefaultLimits
	h := newHarness(t, limits)
	insp := h.callers[scope.RoleInspector]
	if _, err := h.login(insp.Username, "wrong password"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong password = %v; want Unauthenticated", err)
	}
	if _, err := h.login("nobody-here", "wrong password"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("unknown user = %v; want Unauthenticated", err)
	}
	for i := 1; i < limits.AccountFailures-1; i++ {
		if _, err := h.login(insp.Username, "wrong password"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("failure %d = %v; want Unauthenticated", i+1, err)
		}
	}
	if _, err := h.login(insp.Username, "wrong password"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("failure %d = %v; want the lockout (ResourceExhausted)", limits.AccountFailures, err)
	}
	// Locked: even the right password is refused, without hashing.
	if _, err := h.login(insp.Username, insp.Password); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("right password while locked = %v; want ResourceExhausted", err)
	}
	// An unknown username locks the same way (no enumeration by lockout).
	for range limits.AccountFailures {
		h.login("ghost-user", "guess") //nolint:errcheck
	}
	if _, err := h.login("ghost-user", "guess"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("unknown user after %d failures = %v; want ResourceExhausted", limits.AccountFailures, err)
	}

	// The county officer lifts it; the act is recorded in the ledger.
	officer := h.session(t, h.callers[scope.RoleCountyOfficer])
	un, err := h.people.UnlockAccount(officer, &ecogridv1.UnlockAccountRequest{Username: insp.Username})
	if err != nil || !un.GetWasLocked() {
		t.Fatalf("UnlockAccount = %v, %v; want was_locked", un, err)
	}
	if _, err := h.login(insp.Username, insp.Password); err != nil {
		t.Fatalf("login after unlock: %v", err)
	}
	var n int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.records WHERE action = 'account.unlocked' AND actor_id = $1`,
		h.callers[scope.RoleCountyOfficer].Person.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ledger records of the unlock = %d, %v; want 1", n, err)
	}
}

func TestLoginAddressLimit(t *testing.T) {
	limits := accounts.DefaultLimits
	limits.AddrFailures = 4
	h := newHarness(t, limits)
	// Four different usernames from one address: the fourth failure blocks
	// the address, for every account, while each account has failed once.
	for i, u := range []string{"a-user", "b-user", "c-user"} {
		if _, err := h.login(u, "guess"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("failure %d = %v", i+1, err)
		}
	}
	if _, err := h.login("d-user", "guess"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("4th failure from one address = %v; want ResourceExhausted", err)
	}
	insp := h.callers[scope.RoleInspector]
	if _, err := h.login(insp.Username, insp.Password); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("good login from a blocked address = %v; want ResourceExhausted", err)
	}
}

func TestChangePassword(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	insp := h.callers[scope.RoleInspector]
	first, err := h.login(insp.Username, insp.Password)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.login(insp.Username, insp.Password)
	if err != nil {
		t.Fatal(err)
	}
	ctx := withToken(context.Background(), second.GetTokens().GetAccessToken())
	if _, err := h.auth.ChangePassword(ctx, &ecogridv1.ChangePasswordRequest{CurrentPassword: "wrong one", NewPassword: "a brand new password"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ChangePassword with a wrong current password = %v; want PermissionDenied", err)
	}
	if _, err := h.auth.ChangePassword(ctx, &ecogridv1.ChangePasswordRequest{CurrentPassword: insp.Password, NewPassword: "short"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("ChangePassword to a short password = %v; want InvalidArgument", err)
	}
	if _, err := h.auth.ChangePassword(ctx, &ecogridv1.ChangePasswordRequest{CurrentPassword: insp.Password, NewPassword: "a brand new password"}); err != nil {
		t.Fatal(err)
	}
	// The other session ends; this one goes on; the old password is gone.
	if _, err := h.auth.WhoAmI(withToken(context.Background(), first.GetTokens().GetAccessToken()), &ecogridv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("other session after a password change = %v; want Unauthenticated", err)
	}
	if _, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{}); err != nil {
		t.Fatalf("own session after a password change: %v", err)
	}
	if _, err := h.login(insp.Username, insp.Password); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("old password = %v; want Unauthenticated", err)
	}
	if _, err := h.login(insp.Username, "a brand new password"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestMaintenancePrunes(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	insp := h.callers[scope.RoleInspector]
	old, err := h.login(insp.Username, insp.Password)
	if err != nil {
		t.Fatal(err)
	}
	live, err := h.login(insp.Username, insp.Password)
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if _, err := h.pool.Exec(bg, `UPDATE auth.sessions SET revoked_at = now() - interval '31 days' WHERE id = $1`, old.GetSessionId()); err != nil {
		t.Fatal(err)
	}
	h.login("nobody", "guess") //nolint:errcheck
	if _, err := h.pool.Exec(bg, `UPDATE auth.login_limits SET updated_at = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { auth.RunMaintenance(ctx, h.pool, slog.New(slog.NewTextHandler(io.Discard, nil))); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	count := func(q string, args ...any) int {
		var n int
		if err := h.pool.QueryRow(bg, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for count(`SELECT count(*) FROM auth.login_limits`)+count(`SELECT count(*) FROM auth.refresh_tokens WHERE session_id = $1`, old.GetSessionId()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("maintenance did not prune old counters and refresh tokens")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if count(`SELECT count(*) FROM auth.refresh_tokens WHERE session_id = $1`, live.GetSessionId()) != 1 {
		t.Fatal("maintenance pruned a live session's refresh token")
	}
}
