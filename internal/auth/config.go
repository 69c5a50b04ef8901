package auth

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/flagenv"
)

// Config is the auth component's configuration, composed into gridd's and
// cased's configs.
type Config struct {
	Keys     KeyConfig
	Token    TokenConfig
	Sessions SessionConfig
	Limits   accounts.Limits
	// PublicKeyFiles is the comma-separated flag value; Load adds its files
	// to Keys.PublicKeyFiles.
	PublicKeyFiles string
	// HashSlots bounds concurrent argon2id hashes (each holds 19 MiB);
	// 0 means GOMAXPROCS.
	HashSlots int
	// TrustedProxies are comma-separated CIDR prefixes of load balancers
	// whose x-forwarded-for header names the client for login limits.
	TrustedProxies string
}

// RegisterFlags defines the auth flags, each with an environment fallback.
// Key material is only ever read from files or the environment, never
// printed.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Token, c.Sessions, c.Limits = DefaultTokenConfig, DefaultSessionConfig, accounts.DefaultLimits
	flagenv.String(fs, &c.Keys.PrivateKeyFile, "auth-key-file", EnvKeyFile, "", "Ed25519 PKCS#8 PEM key that signs access tokens (gridctl users keygen); cased needs only -auth-public-keys")
	flagenv.Secret(fs, &c.Keys.PrivateKeyPEM, "auth-key", EnvKey, "the signing key's PEM text (instead of -auth-key-file)")
	flagenv.String(fs, &c.PublicKeyFiles, "auth-public-keys", EnvPublicKeys, "", "comma-separated PEM public key files whose tokens are accepted (verify-only services, retired keys)")
	flagenv.String(fs, &c.Token.Issuer, "auth-issuer", "ECOGRID_AUTH_ISSUER", DefaultTokenConfig.Issuer, "access token issuer (iss)")
	flagenv.String(fs, &c.Token.Audience, "auth-audience", "ECOGRID_AUTH_AUDIENCE", DefaultTokenConfig.Audience, "access token audience (aud)")
	flagenv.Duration(fs, &c.Token.AccessTTL, "auth-access-ttl", "ECOGRID_AUTH_ACCESS_TTL", DefaultTokenConfig.AccessTTL, "access token lifetime")
	flagenv.Duration(fs, &c.Sessions.RefreshTTL, "auth-refresh-ttl", "ECOGRID_AUTH_REFRESH_TTL", DefaultSessionConfig.RefreshTTL, "refresh token lifetime (idle)")
	flagenv.Duration(fs, &c.Sessions.MaxAge, "auth-session-max-age", "ECOGRID_AUTH_SESSION_MAX_AGE", DefaultSessionConfig.MaxAge, "longest a session lasts before a new login")
	flagenv.String(fs, &c.TrustedProxies, "auth-trusted-proxies", "ECOGRID_AUTH_TRUSTED_PROXIES", "", "comma-separated CIDRs of load balancers whose x-forwarded-for names the client (login limits per address)")
	flagenv.Int(fs, &c.HashSlots, "auth-hash-slots", "ECOGRID_AUTH_HASH_SLOTS", 0, "concurrent password hashes, 19 MiB each (0: one per core)")
}

// Load loads the keys and builds the token issuer/checker.
func (c *Config) Load() (*Tokens, error) {
	kc := c.Keys
	for _, f := range strings.Split(c.PublicKeyFiles, ",") {
		if f = strings.TrimSpace(f); f != "" {
			kc.PublicKeyFiles = append(kc.PublicKeyFiles, f)
		}
	}
	keys, err := LoadKeys(kc)
	if err != nil {
		return nil, err
	}
	c.defaults()
	return NewTokens(c.Token, keys), nil
}

// NewHasher returns the password hasher for this configuration (OWASP
// argon2id parameters, bounded concurrency).
func (c *Config) NewHasher() *password.Hasher {
	return password.NewHasher(password.Default, c.HashSlots)
}

// RunMaintenance prunes, every hour until ctx ends, stale login counters
// and the refresh-token hashes of sessions that ended more than 30 days ago
// (kept that long so a late replay is still recognised and logged; the
// session rows themselves stay as the login history).
func RunMaintenance(ctx context.Context, db Pool, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := accounts.Prune(ctx, db); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "pruning login counters failed", "err", err.Error())
		} else if n > 0 {
			log.InfoContext(ctx, "login counters pruned", "count", n)
		}
		if n, err := accounts.PruneRefreshTokens(ctx, db); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "pruning refresh tokens failed", "err", err.Error())
		} else if n > 0 {
			log.InfoContext(ctx, "refresh tokens pruned", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Config) defaults() {
	if c.Token.Issuer == "" {
		c.Token = DefaultTokenConfig
	}
	if c.Sessions.RefreshTTL == 0 || c.Sessions.MaxAge == 0 {
		c.Sessions = DefaultSessionConfig
	}
	if c.Limits.AccountFailures == 0 {
		c.Limits = accounts.DefaultLimits
	}
}

// New builds the interceptors and, when the signing key is configured, the
// AuthService (nil in verify-only processes such as cased, which do not
// log people in).
func New(cfg Config, db Pool, log *slog.Logger) (*Authorizer, *Service, error) {
	cfg.defaults()
	tokens, err := cfg.Load()
	if err != nil {
		return nil, nil, err
	}
	authz := NewAuthorizer(tokens, db, log)
	if tokens.keys.private == nil {
		return authz, nil, nil
	}
	proxies, err := ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, nil, err
	}
	svc := NewService(db, tokens, cfg.NewHasher(), cfg.Limits, cfg.Sessions, log)
	svc.TrustProxies(proxies...)
	svc.ForgetThrough(authz)
	return authz, svc, nil
}

// ParsePrefixes parses comma-separated CIDR prefixes (or single addresses).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
