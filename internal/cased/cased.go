// Package cased assembles the case-tracking service: the JetStream consumer
// that turns violations into cases, the case workflow, and the relay that
// publishes case events, and the webhook dispatcher with its WebhookService.
// cmd/cased and `gridctl dev` both run it through Run.
//
// cased owns webhook delivery (gridd runs no dispatcher): with several
// cased replicas the dispatcher's PostgreSQL advisory lock lets one
// deliver, so no event is posted twice by two processes.
package cased

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/cases"
	"ecogrid/internal/daemon"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/webhooks"
)

// Config is cased's whole configuration, composed of its components'.
type Config struct {
	daemon.Config // server, database, NATS, access tokens (gridd's public key is enough), Ready

	Consumer   cases.ConsumerConfig
	Background cases.BackgroundConfig
	Relay      outbox.RelayConfig
	Webhooks   webhooks.Config
}

// RegisterFlags defines cased's flags, each with an environment fallback.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Config.RegisterFlags(fs, "cased", "CASED", "127.0.0.1:7444", "127.0.0.1:9465")
	flagenv.Int(fs, &c.Consumer.MaxDeliver, "max-deliver", "CASED_MAX_DELIVER", 8, "deliveries of a failing violation before it is dead-lettered")
	flagenv.Int(fs, &c.Consumer.Workers, "workers", "CASED_WORKERS", 4, "concurrent violation handlers")
	flagenv.Duration(fs, &c.Background.SweepInterval, "overdue-sweep", "CASED_OVERDUE_SWEEP", time.Minute, "how often overdue cases are escalated")
	flagenv.Duration(fs, &c.Background.ReconcileInterval, "reconcile-interval", "CASED_RECONCILE_INTERVAL", time.Minute, "how often violations without a case are looked for")
	flagenv.Duration(fs, &c.Background.Reconcile.Grace, "reconcile-grace", "CASED_RECONCILE_GRACE", 2*time.Minute, "how long a violation may take to become a case before reconciliation")
	flagenv.Duration(fs, &c.Webhooks.Timeout, "webhook-timeout", "CASED_WEBHOOK_TIMEOUT", 10*time.Second, "how long one webhook POST may take before it is retried")
	flagenv.Duration(fs, &c.Webhooks.MaxBackoff, "webhook-max-backoff", "CASED_WEBHOOK_MAX_BACKOFF", 5*time.Minute, "longest wait between attempts of a failing webhook delivery")
	flagenv.Int(fs, &c.Webhooks.Lanes, "webhook-lanes", "CASED_WEBHOOK_LANES", 8, "concurrent POSTs per webhook subscriber (each case stays in order)")
	host, _ := os.Hostname()
	c.Relay.Name = "cased@" + host
}

// Run serves until ctx is cancelled.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return daemon.Run(ctx, "cased", cfg.Config, log, func(ctx context.Context, p *daemon.Process) error {
		return assemble(ctx, cfg, p)
	})
}

// assemble registers cased's services and workers on the shared process.
// An extra service or worker is one line here.
func assemble(_ context.Context, cfg Config, p *daemon.Process) error {
	log, pool := p.Log, p.Pool
	tracker := cases.NewTracker(pool, log.With("component", "cases"))
	consumer := cases.NewConsumer(p.JS, tracker, cfg.Consumer, log.With("component", "consumer"))
	relay := outbox.NewRelay(pool, p.JS, cfg.Relay, log.With("component", "outbox_relay"))
	if err := cases.RegisterMetrics(p.Server.Registry); err != nil {
		return err
	}
	if err := outbox.RegisterMetrics(p.Server.Registry, pool); err != nil {
		return err
	}
	// Consumer lag, dead-letter depth, open and overdue cases per county.
	lag := &messaging.JetStreamCollector{JS: p.JS, Consumers: []messaging.Consumer{{Stream: messaging.StreamViolations, Name: consumer.Durable()}}}
	if err := p.Server.Registry.Register(lag); err != nil {
		return err
	}
	if err := p.Server.Registry.Register(cases.NewCaseCountCollector(pool)); err != nil {
		return err
	}

	ecogridv1.RegisterCaseServiceServer(p, cases.NewService(tracker, log))
	ecogridv1.RegisterWebhookServiceServer(p, webhooks.NewService(pool, log.With("component", "webhooks")))
	dispatcher := webhooks.NewDispatcher(pool, p.JS, cfg.Webhooks, log.With("component", "webhooks"))

	p.Go(consumer.Run)
	p.Go(func(ctx context.Context) error { return tracker.RunBackground(ctx, cfg.Background) })
	p.Go(relay.Run)
	p.Go(dispatcher.Run)
	return nil
}
