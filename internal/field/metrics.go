package field

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the field context's own counters, next to the per-RPC ones
// the server keeps: what the county office watches (violations, reports
// filed outside the reporter's cells, implausible patrols, photos whose
// EXIF disagrees) and what operators watch (replays, refused uploads).
type metrics struct {
	reports       *prometheus.CounterVec
	replays       prometheus.Counter
	patrols       *prometheus.CounterVec
	trackPoints   prometheus.Counter
	uploads       *prometheus.CounterVec
	uploadBytes   prometheus.Counter
	exifMismatch  prometheus.Counter
	janitorPurged prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "reports_filed_total",
			Help: "Reports stored, by violation flag and whether filed outside the reporter's cells.",
		}, []string{"violation", "outside_area"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "report_replays_total",
			Help: "Report submissions answered with an already stored report (retries, offline replays).",
		}),
		patrols: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "patrols_ended_total",
			Help: "Patrols ended, by whether they carry a plausibility flag.",
		}, []string{"plausible"}),
		trackPoints: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "track_points_stored_total",
			Help: "GPS fixes stored (replayed fixes are not counted).",
		}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "photo_uploads_total",
			Help: "Photo uploads finished, by outcome: stored, deduplicated, refused.",
		}, []string{"outcome"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "photo_bytes_received_total",
			Help: "Photo bytes written to partial uploads.",
		}),
		exifMismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "photo_exif_mismatches_total",
			Help: "Photo-report pairs whose EXIF position or time disagrees with the report.",
		}),
		janitorPurged: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "ecogrid", Subsystem: "field", Name: "abandoned_uploads_removed_total",
			Help: "Unfinished uploads removed by the janitor.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.reports, m.replays, m.patrols, m.trackPoints, m.uploads, m.uploadBytes, m.exifMismatch, m.janitorPurged)
	}
	return m
}

func (m *metrics) reportFiled(r Report) {
	m.reports.WithLabelValues(strconv.FormatBool(r.Violation), strconv.FormatBool(r.OutsideArea)).Inc()
	m.exifMismatch.Add(float64(len(r.ExifMismatch)))
}
