package fieldsim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
)

// inspector is one simulated grid inspector with a phone: its cell, its
// position, its phone's coordinate system, and its offline queue.
type inspector struct {
	sim     *Sim
	n       int
	sess    *session
	village *village
	rng     *rand.Rand
	system  coord.System

	lon, lat, heading float64
	placed            bool
	seq               int
	queue             []*queued
}

// queued is a report filed while offline, with its photos, kept on the
// phone until the network is back.
type queued struct {
	draft  *ecogridv1.ReportDraft
	photos []*photoFile
}

var categories = []string{"air", "water", "soil", "solid_waste", "noise", "ecological_damage",
	"illegal_sand_mining", "open_burning", "illegal_discharge", "other"}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pause is a think time: exponential around mean, capped at 4×.
func pause(r *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(math.Min(r.ExpFloat64(), 4) * float64(mean))
}

// run patrols until work ends, then replays whatever is still queued
// (the phone finds the network again) within ops.
func (in *inspector) run(work, ops context.Context) {
	if !sleepCtx(work, time.Duration(in.rng.Float64()*float64(in.sim.cfg.ThinkTime))) {
		in.flush(ops)
		return
	}
	for work.Err() == nil {
		in.patrol(work, ops)
		sleepCtx(work, pause(in.rng, in.sim.cfg.ThinkTime))
	}
	in.flush(ops)
}

// position is a fix as this phone reports it.
func (in *inspector) position(lat, lon float64) *ecogridv1.Position {
	plat, plon, err := coord.FromWGS84(lat, lon, in.system)
	if err != nil {
		plat, plon = lat, lon
	}
	return &ecogridv1.Position{Latitude: plat, Longitude: plon, CoordinateSystem: ecogridv1.CoordinateSystem(in.system),
		AccuracyM: 4 + in.rng.Float64()*12}
}

// refused records a call the server refused for good.
func (s *Sim) refused(rpc string, err error) {
	s.work.Refused.Add(1)
	s.acks.refusal(rpc, err)
	s.log.Warn("call refused", "rpc", rpc, "error", err)
}

// patrol walks one patrol: start, a GPS track sent in batches (some
// replayed, some out of order, one sometimes after the end), one or two
// reports, end. Offline patrols queue their reports.
func (in *inspector) patrol(work, ops context.Context) {
	s, r := in.sim, in.rng
	a := in.village.area
	if !in.placed {
		in.lon, in.lat = a.randomPoint(r)
		in.heading = r.Float64() * 2 * math.Pi
		in.placed = true
	}
	offline := r.Float64() < s.cfg.OfflineShare
	patrolID := uuidFrom(r)
	const interval = 30 * time.Second
	n := 24 + r.IntN(24)
	now := time.Now().UTC().Truncate(time.Microsecond)
	start := now.Add(-time.Duration(n+2) * interval)
	if err := s.do(ops, in.sess, "FieldService/StartPatrol", func(ctx context.Context) error {
		_, err := s.field.StartPatrol(ctx, &ecogridv1.StartPatrolRequest{PatrolId: patrolID, StartedAt: timestamppb.New(start)})
		return err
	}); err != nil {
		in.failed("FieldService/StartPatrol", err)
		return
	}
	type fix struct {
		at       time.Time
		lat, lon float64
	}
	fixes := make([]fix, n)
	pts := make([]*ecogridv1.TrackPoint, n)
	for i := range n {
		// 1.2 to 1.6 m/s: a walking pace; 30 s between fixes.
		in.lon, in.lat, in.heading = a.step(r, in.lon, in.lat, in.heading, 36+r.Float64()*12)
		at := start.Add(time.Duration(i+1) * interval)
		fixes[i] = fix{at, in.lat, in.lon}
		pts[i] = &ecogridv1.TrackPoint{RecordedAt: timestamppb.New(at), Position: in.position(in.lat, in.lon)}
	}
	var batches [][]*ecogridv1.TrackPoint
	for i := 0; i < n; {
		k := min(n-i, 8+r.IntN(6))
		batches = append(batches, pts[i:i+k])
		i += k
	}
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	if r.Float64() < 0.3 {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	if r.Float64() < 0.3 {
		order = append(order, order[r.IntN(len(order))]) // a batch sent twice
		s.work.TrackReplays.Add(1)
	}
	var late []int
	if len(order) > 1 && r.Float64() < 0.15 {
		late, order = order[len(order)-1:], order[:len(order)-1]
	}
	complete := true
	send := func(b int) {
		var resp *ecogridv1.AppendTrackPointsResponse
		err := s.do(ops, in.sess, "FieldService/AppendTrackPoints", func(ctx context.Context) (err error) {
			resp, err = s.field.AppendTrackPoints(ctx, &ecogridv1.AppendTrackPointsRequest{PatrolId: patrolID, Points: batches[b]})
			return err
		})
		s.work.TrackBatchesSent.Add(1)
		s.work.TrackPointsSent.Add(int64(len(batches[b])))
		if err != nil {
			complete = false
			in.failed("FieldService/AppendTrackPoints", err)
			return
		}
		if resp.GetRejected() > 0 {
			complete = false
			s.work.TrackRejected.Add(int64(resp.GetRejected()))
			s.acks.refusal("FieldService/AppendTrackPoints", fmt.Errorf("%d points rejected: %s", resp.GetRejected(), resp.GetFirstRejection()))
		}
	}

	reports := 1
	if r.Float64() < 0.5 {
		reports = 2
	}
	at := make([]int, reports)
	for i := range at {
		at[i] = r.IntN(n)
	}
	for bi, b := range order {
		send(b)
		for _, i := range at {
			// File the report once the batch holding its fix is sent.
			if bi == len(order)/2 || (len(order) == 1) {
				f := fixes[i]
				q, err := in.newReport(patrolID, f.at, f.lat, f.lon)
				if err != nil {
					s.log.Error("making a report", "error", err)
					continue
				}
				if offline {
					in.queue = append(in.queue, q)
				} else {
					in.queue = append(in.queue, q)
					in.flushOne(ops)
				}
			}
		}
		sleepCtx(work, pause(r, s.cfg.ThinkTime/8))
	}
	end := fixes[n-1].at.Add(interval)
	if err := s.do(ops, in.sess, "FieldService/EndPatrol", func(ctx context.Context) error {
		_, err := s.field.EndPatrol(ctx, &ecogridv1.EndPatrolRequest{PatrolId: patrolID, EndedAt: timestamppb.New(end)})
		return err
	}); err != nil {
		complete = false
		in.failed("FieldService/EndPatrol", err)
	}
	for _, b := range late {
		send(b)
	}
	s.work.Patrols.Add(1)
	if complete {
		s.acks.patrol(ackPatrol{id: patrolID, points: n})
	}
	if !offline {
		in.flush(ops)
	}
}

func (in *inspector) failed(rpc string, err error) {
	if status.Code(err) == codes.Canceled || retryable(status.Code(err)) {
		return // gave up at the end of the run; nothing was claimed
	}
	in.sim.refused(rpc, err)
}

// newReport drafts a report at a fix, with photos taken there.
func (in *inspector) newReport(patrolID string, at time.Time, lat, lon float64) (*queued, error) {
	s, r := in.sim, in.rng
	in.seq++
	cat := categories[r.IntN(len(categories))]
	sev := ecogridv1.Severity_SEVERITY_NORMAL
	switch x := r.Float64(); {
	case x < 0.3:
		sev = ecogridv1.Severity_SEVERITY_MINOR
	case x < 0.75:
	case x < 0.95:
		sev = ecogridv1.Severity_SEVERITY_SERIOUS
	default:
		sev = ecogridv1.Severity_SEVERITY_CRITICAL
	}
	d := &ecogridv1.ReportDraft{
		ReportId: uuidFrom(r), ObservedAt: timestamppb.New(at), Category: cat, Severity: sev,
		Description: fmt.Sprintf("fieldsim %s report %d.%d: %s seen in cell %s", s.runID, in.n, in.seq, cat, in.village.code),
		Position:    in.position(lat, lon), PatrolId: patrolID, Violation: r.Float64() < s.cfg.ViolationShare,
	}
	q := &queued{draft: d}
	if r.Float64() < s.cfg.PhotoShare {
		for range 1 + r.IntN(2) {
			p, err := takePhoto(r, lat, lon, at)
			if err != nil {
				return nil, err
			}
			q.photos = append(q.photos, p)
			d.PhotoSha256 = append(d.PhotoSha256, p.sha)
		}
	}
	return q, nil
}

// uploadPhotos sends a queued report's photos; false when the network
// gave out (the report stays queued).
func (in *inspector) uploadPhotos(ctx context.Context, q *queued) bool {
	for _, p := range q.photos {
		if err := in.sim.upload(ctx, in.sess, p, q.draft.GetReportId(), in.rng.Float64() < in.sim.cfg.DropShare); err != nil {
			in.failed("FieldService/UploadPhoto", err)
			return false
		}
	}
	return true
}

// flushOne files the newest queued report on its own (online filing).
func (in *inspector) flushOne(ctx context.Context) {
	s := in.sim
	q := in.queue[len(in.queue)-1]
	if !in.uploadPhotos(ctx, q) {
		return
	}
	var resp *ecogridv1.SubmitReportResponse
	err := s.do(ctx, in.sess, "FieldService/SubmitReport", func(ctx context.Context) (err error) {
		resp, err = s.field.SubmitReport(ctx, &ecogridv1.SubmitReportRequest{Report: q.draft})
		return err
	})
	if err != nil {
		if c := status.Code(err); !retryable(c) && c != codes.Canceled {
			in.queue = in.queue[:len(in.queue)-1] // refused: the app shows it, the user fixes it
			s.refused("FieldService/SubmitReport", err)
		}
		return // stays queued for the next replay
	}
	in.queue = in.queue[:len(in.queue)-1]
	in.acked(resp.GetReport().GetReportId(), q, false)
}

func (in *inspector) acked(id string, q *queued, offline bool) {
	s := in.sim
	if id != q.draft.GetReportId() {
		s.refused("FieldService/SubmitReport", fmt.Errorf("asked to store report %s, server answered with %s", q.draft.GetReportId(), id))
		return
	}
	s.acks.report(id, ackReport{violation: q.draft.GetViolation(), photos: q.draft.GetPhotoSha256()})
	s.work.Reports.Add(1)
	if q.draft.GetViolation() {
		s.work.Violations.Add(1)
	}
	if offline {
		s.work.ReportsOffline.Add(1)
	}
}

// flush replays the offline queue: photos first, then the reports in
// batches. Items that fail with a retryable code stay queued.
func (in *inspector) flush(ctx context.Context) {
	s := in.sim
	for len(in.queue) > 0 && ctx.Err() == nil {
		var ready []*queued
		var rest []*queued
		for _, q := range in.queue {
			if len(ready) < 50 && in.uploadPhotos(ctx, q) {
				ready = append(ready, q)
			} else {
				rest = append(rest, q)
			}
		}
		if len(ready) == 0 {
			return
		}
		req := &ecogridv1.SubmitReportBatchRequest{}
		for _, q := range ready {
			req.Reports = append(req.Reports, q.draft)
		}
		var resp *ecogridv1.SubmitReportBatchResponse
		err := s.do(ctx, in.sess, "FieldService/SubmitReportBatch", func(ctx context.Context) (err error) {
			resp, err = s.field.SubmitReportBatch(ctx, req)
			return err
		})
		s.work.Batches.Add(1)
		if err != nil {
			in.failed("FieldService/SubmitReportBatch", err)
			return
		}
		for i, res := range resp.GetResults() {
			if i >= len(ready) {
				break
			}
			q := ready[i]
			switch c := codes.Code(res.GetErrorCode()); {
			case c == codes.OK:
				in.acked(res.GetReportId(), q, true)
			case retryable(c):
				s.m.fail("FieldService/SubmitReportBatch item", status.Error(c, res.GetErrorMessage()))
				rest = append(rest, q)
			default:
				s.refused("FieldService/SubmitReportBatch item", status.Error(c, res.GetErrorMessage()))
			}
		}
		if len(resp.GetResults()) < len(ready) {
			rest = append(rest, ready[len(resp.GetResults()):]...)
		}
		in.queue = rest
		if len(rest) > 0 && !sleepCtx(ctx, time.Second) {
			return
		}
	}
}
