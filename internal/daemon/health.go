package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultHealthInterval is how often a process checks its dependencies
// unless Config.HealthInterval says otherwise.
const DefaultHealthInterval = 5 * time.Second

// dependencyTimeout bounds one PostgreSQL ping.
const dependencyTimeout = 2 * time.Second

// watchDependencies keeps health (gRPC health and /healthz) in step with
// what the process depends on: NOT_SERVING, with the reason, while
// PostgreSQL does not answer a ping or the NATS connection is not
// connected; SERVING again once both are back. A load balancer or
// Kubernetes then stops sending calls that could only fail.
func (p *Process) watchDependencies(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ecogrid_dependency_up",
		Help: "1 while the dependency answers (PostgreSQL ping, NATS connection), else 0; health is NOT_SERVING while any is 0.",
	}, []string{"dependency"})
	if err := p.Server.Registry.Register(up); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	for {
		reason := p.dependencyProblem(ctx, up)
		if ctx.Err() != nil {
			return nil
		}
		if reason != last {
			if reason != "" {
				p.Log.Warn("dependencies down: health NOT_SERVING", "reason", reason)
			} else {
				p.Log.Info("dependencies back: health SERVING")
			}
			p.Server.SetUnhealthy(reason)
			last = reason
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// dependencyProblem says what is down, "" when nothing is.
func (p *Process) dependencyProblem(ctx context.Context, up *prometheus.GaugeVec) string {
	var problems []string
	pctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	err := p.Pool.Ping(pctx)
	cancel()
	if err != nil {
		problems = append(problems, "PostgreSQL does not answer")
		up.WithLabelValues("postgres").Set(0)
	} else {
		up.WithLabelValues("postgres").Set(1)
	}
	if st := p.NATS.Status(); st != nats.CONNECTED {
		problems = append(problems, "NATS is "+strings.ToLower(st.String()))
		up.WithLabelValues("nats").Set(0)
	} else {
		up.WithLabelValues("nats").Set(1)
	}
	return strings.Join(problems, "; ")
}
