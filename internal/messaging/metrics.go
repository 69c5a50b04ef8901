package messaging

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	consumerPending = prometheus.NewDesc("ecogrid_jetstream_consumer_pending_messages",
		"Messages of the stream the durable consumer has not yet been delivered (its lag).", []string{"stream", "consumer"}, nil)
	consumerAckPending = prometheus.NewDesc("ecogrid_jetstream_consumer_ack_pending_messages",
		"Messages delivered to the consumer and not yet acknowledged (being worked on, or stuck).", []string{"stream", "consumer"}, nil)
	consumerRedelivered = prometheus.NewDesc("ecogrid_jetstream_consumer_redelivered_messages",
		"Messages delivered more than once and still unacknowledged.", []string{"stream", "consumer"}, nil)
	deadLetters = prometheus.NewDesc("ecogrid_dead_letter_messages",
		"Messages parked on the dead-letter stream (DLQ) waiting for an operator to replay or discard them (gridctl deadletters).", nil, nil)
	streamMessages = prometheus.NewDesc("ecogrid_jetstream_stream_messages",
		"Messages held by the stream.", []string{"stream"}, nil)
)

// Consumer names a durable consumer on a stream.
type Consumer struct{ Stream, Name string }

// JetStreamCollector reads, at scrape time, the lag of the durable
// consumers a process works through and the depth of the dead-letter
// stream. A consumer not created yet (the process starting) is left out
// rather than failing the scrape.
type JetStreamCollector struct {
	JS        jetstream.JetStream
	Consumers []Consumer
}

// Describe implements prometheus.Collector.
func (c *JetStreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{consumerPending, consumerAckPending, consumerRedelivered, deadLetters, streamMessages} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *JetStreamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, co := range c.Consumers {
		cons, err := c.JS.Consumer(ctx, co.Stream, co.Name)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(consumerPending, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(consumerPending, prometheus.GaugeValue, float64(info.NumPending), co.Stream, co.Name)
		ch <- prometheus.MustNewConstMetric(consumerAckPending, prometheus.GaugeValue, float64(info.NumAckPending), co.Stream, co.Name)
		ch <- prometheus.MustNewConstMetric(consumerRedelivered, prometheus.GaugeValue, float64(info.NumRedelivered), co.Stream, co.Name)
	}
	for _, name := range []string{StreamViolations, StreamCases, StreamDeadLetter} {
		s, err := c.JS.Stream(ctx, name)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(streamMessages, err)
			continue
		}
		st := s.CachedInfo().State
		ch <- prometheus.MustNewConstMetric(streamMessages, prometheus.GaugeValue, float64(st.Msgs), name)
		if name == StreamDeadLetter {
			ch <- prometheus.MustNewConstMetric(deadLetters, prometheus.GaugeValue, float64(st.Msgs))
		}
	}
}
