package auth

import "github.com/prometheus/client_golang/prometheus"

var (
	loginFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "auth", Name: "login_failures_total",
		Help: "Refused logins, by reason: credentials (wrong username or password, or a disabled account) or locked (the account or address was locked out).",
	}, []string{"reason"})
	lockouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "auth", Name: "lockouts_total",
		Help: "Lockouts begun by failed logins, by what was locked: account (one username) or address (one client address).",
	}, []string{"key"})
)

func init() {
	for _, r := range []string{"credentials", "locked"} {
		loginFailures.WithLabelValues(r)
	}
	for _, k := range []string{"account", "address"} {
		lockouts.WithLabelValues(k)
	}
}

// RegisterMetrics registers the login failure and lockout counters; call
// it once in the process that serves AuthService.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{loginFailures, lockouts} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
