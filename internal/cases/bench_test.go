package cases

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
)

// benchCounties spreads load over counties as a province would see it;
// the ledger serialises appends per county, not across counties.
func benchCounties(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("1301%02d101201", 21+i)
	}
	return out
}

// fileAt files total violations at rate per second, round-robin over the
// villages. Every 10 ms the violations due are committed in one
// transaction: this machine's PostgreSQL commits about 500 single-row
// transactions a second (fsync-bound), so one transaction per violation
// could not offer 1,000/s; the writers stand in for many gridd replicas.
func fileAt(b *testing.B, s *stack, villages []string, rate, total int) {
	const tick = 10 * time.Millisecond
	jobs := make(chan []*eventsv1.ViolationReported, 64)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for evs := range jobs {
				s.fileMany(evs...)
			}
		})
	}
	start := time.Now()
	filed := 0
	for filed < total {
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+1)
		var evs []*eventsv1.ViolationReported
		for ; filed < due; filed++ {
			evs = append(evs, violation(villages[filed%len(villages)]))
		}
		if len(evs) > 0 {
			jobs <- evs
		}
		time.Sleep(tick)
	}
	close(jobs)
	wg.Wait()
	if late := time.Since(start) - time.Duration(total)*time.Second/time.Duration(rate); late > time.Second {
		b.Logf("filing fell %v behind the target rate", late)
	}
}

// latencies returns, per case, the time from the violation's outbox
// commit (the report's transaction) to the case being written by cased.
func latencies(b *testing.B, s *stack) []time.Duration {
	return durations(b, s, `
		SELECT extract(epoch FROM c.created_at - e.created_at)::float8
		FROM cases.cases c JOIN outbox.events e ON e.event_id = c.violation_event_id`)
}

// relayLatencies returns, per violation, the time from its outbox commit
// to JetStream's acknowledgement of it (the relay's share).
func relayLatencies(b *testing.B, s *stack) []time.Duration {
	return durations(b, s, `
		SELECT extract(epoch FROM e.sent_at - e.created_at)::float8
		FROM outbox.events e WHERE e.event_type = 'ViolationReported'`)
}

func durations(b *testing.B, s *stack, sql string) []time.Duration {
	rows, err := s.pool.Query(context.Background(), sql)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var secs float64
		if err := rows.Scan(&secs); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Duration(secs*float64(time.Second)))
	}
	slices.Sort(out)
	return out
}

// cpuMeter measures the CPU time this test process (consumer, relay and
// the in-process nats-server) and the PostgreSQL backends of the test's
// database spend over a span: per case, a figure that CPU starvation on a
// shared machine inflates far less than the wall-clock rate.
type cpuMeter struct {
	s    *stack
	proc time.Duration
	back map[int32]time.Duration
}

func startCPU(s *stack) *cpuMeter {
	m := &cpuMeter{s: s}
	m.proc, m.back = processCPU(), backendCPU(s)
	return m
}

// report adds go-cpu-µs/case and db-cpu-µs/case for n cases.
func (m *cpuMeter) report(b *testing.B, n int) {
	proc := processCPU() - m.proc
	var back time.Duration
	for pid, t := range backendCPU(m.s) {
		back += t - m.back[pid] // a backend started since counts whole
	}
	b.ReportMetric(float64(proc.Microseconds())/float64(n), "go-cpu-µs/case")
	b.ReportMetric(float64(back.Microseconds())/float64(n), "db-cpu-µs/case")
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average %s", strings.Join(strings.Fields(string(l))[:3], " "))
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the user and system time of each PostgreSQL backend now
// connected to the test's database, from /proc (PostgreSQL runs on this
// machine, as the tests require). A backend that exits within a span
// takes its time with it: the pool keeps its connections over a run.
func backendCPU(s *stack) map[int32]time.Duration {
	out := map[int32]time.Duration{}
	rows, err := s.pool.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return out
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return out
	}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name (which may hold spaces) start
		// at the state, field 3; utime is field 14, stime 15 (in USER_HZ).
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			out[pid] = time.Duration(u+st) * time.Second / 100
		}
	}
	return out
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
}

// BenchmarkViolationToCase files violations at a fixed rate through the
// whole pipeline (outbox → relay → JetStream with fsync always → consumer →
// case + inbox + ledger + CaseEvent) and reports the latency percentiles
// and the achieved case-creation rate. Run with -benchtime=1x.
func BenchmarkViolationToCase(b *testing.B) {
	for _, sc := range []struct {
		rate, seconds, counties int
	}{
		{100, 10, 1},
		{1000, 3, 1},
		{1000, 3, 10},
	} {
		b.Run(fmt.Sprintf("rate=%d/counties=%d", sc.rate, sc.counties), func(b *testing.B) {
			for range b.N {
				s := newStack(b)
				stopRelay := s.startRelay("gridd-1")
				stopConsumer := s.startConsumer(ConsumerConfig{Workers: 8})
				total := sc.rate * sc.seconds
				cpu := startCPU(s)
				start := time.Now()
				fileAt(b, s, benchCounties(sc.counties), sc.rate, total)
				s.waitCases(total, 5*time.Minute)
				elapsed := time.Since(start)
				l := latencies(b, s)
				b.ReportMetric(pct(l, 0.50), "p50-ms")
				b.ReportMetric(pct(l, 0.99), "p99-ms")
				b.ReportMetric(pct(l, 1), "max-ms")
				b.ReportMetric(pct(relayLatencies(b, s), 0.50), "relay-p50-ms")
				b.ReportMetric(float64(total)/elapsed.Seconds(), "cases/s")
				cpu.report(b, total) // filing included
				stopConsumer()
				stopRelay()
			}
		})
	}
}

// BenchmarkCaseCreationSustained measures cased alone: a backlog of
// violations already in JetStream is turned into cases as fast as the
// consumer can. Run with -benchtime=1x.
func BenchmarkCaseCreationSustained(b *testing.B) {
	for _, counties := range []int{1, 10} {
		b.Run(fmt.Sprintf("counties=%d", counties), func(b *testing.B) {
			for range b.N {
				s := newStack(b)
				const total = 3000
				villages := benchCounties(counties)
				for i := range total {
					s.file(violation(villages[i%len(villages)]))
				}
				stopRelay := s.startRelay("gridd-1")
				deadline := time.Now().Add(2 * time.Minute)
				for s.count(`SELECT count(*) FROM outbox.events WHERE sent_at IS NULL`) > 0 {
					if time.Now().After(deadline) {
						b.Fatal("relay did not drain")
					}
					time.Sleep(50 * time.Millisecond)
				}
				stopRelay()
				cpu := startCPU(s)
				start := time.Now()
				stop := s.startConsumer(ConsumerConfig{Workers: 8})
				s.waitCases(total, 5*time.Minute)
				b.ReportMetric(float64(total)/time.Since(start).Seconds(), "cases/s")
				cpu.report(b, total)
				stop()
			}
		})
	}
}

// BenchmarkOpenFromViolations measures the case transaction alone (inbox,
// case, timeline, ledger append, CaseEvent outbox row), one violation per
// transaction and 64 per transaction.
func BenchmarkOpenFromViolations(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := newStack(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				evs := make([]*eventsv1.ViolationReported, batch)
				srcs := make([]Source, batch)
				for j := range evs {
					evs[j] = violation(testVillage)
					srcs[j] = Source{Subject: "bench", Kind: "jetstream"}
					if err := recordReport(ctx, s.pool, evs[j]); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.tracker.OpenFromViolations(ctx, evs, srcs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
		})
	}
}
