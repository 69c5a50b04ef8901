package fieldsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// supervisor is a township supervisor working the township's cases on
// cased: accept (or reject a few), dispatch to an inspector of the
// township, and — once that inspector has started, rectified with a
// photo and verified on site — close.
type supervisor struct {
	sim  *Sim
	sess *session
	town *township
	mu   sync.Mutex // guards rng
	rng  *rand.Rand
}

func (sup *supervisor) rand() (float64, string) {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	return sup.rng.Float64(), uuidFrom(sup.rng)
}

func (sup *supervisor) run(work, ops context.Context) {
	s := sup.sim
	for work.Err() == nil {
		var page *ecogridv1.ListCasesResponse
		err := s.do(work, sup.sess, "CaseService/ListCases", func(ctx context.Context) (err error) {
			page, err = s.cases.ListCases(ctx, &ecogridv1.ListCasesRequest{
				Page: &ecogridv1.PageRequest{PageSize: 50}, NodeCode: sup.town.code,
				States: []ecogridv1.CaseState{ecogridv1.CaseState_CASE_STATE_REPORTED},
			})
			return err
		})
		if err != nil {
			if work.Err() == nil {
				if c := status.Code(err); !retryable(c) {
					s.refused("CaseService/ListCases", err)
				}
				sleepCtx(work, time.Second)
			}
			continue
		}
		if len(page.GetCases()) == 0 {
			sleepCtx(work, time.Second)
			continue
		}
		// Work a page of cases a few at a time; the next listing comes
		// after, so no case is taken twice.
		_ = parallel(work, page.GetCases(), s.cfg.SupervisorWorkers, func(_ context.Context, c *ecogridv1.Case) error {
			sup.work(ops, c)
			return nil
		})
	}
}

// step takes one workflow step under a fresh request id (reused by every
// retry) and records it as acknowledged.
func (sup *supervisor) step(ctx context.Context, sess *session, caseID, action string, call func(ctx context.Context, requestID string) error) bool {
	s := sup.sim
	_, rid := sup.rand()
	rpc := "CaseService/" + action
	if err := s.do(ctx, sess, rpc, func(ctx context.Context) error { return call(ctx, rid) }); err != nil {
		if c := status.Code(err); !retryable(c) && c != codes.Canceled && ctx.Err() == nil {
			s.refused(rpc, fmt.Errorf("case %s: %w", caseID, err))
		}
		return false
	}
	s.acks.step(ackStep{id: rid, caseID: caseID, action: action})
	return true
}

func (sup *supervisor) work(ctx context.Context, c *ecogridv1.Case) {
	s := sup.sim
	id := c.GetId()
	if x, _ := sup.rand(); x < 0.05 {
		if sup.step(ctx, sup.sess, id, "RejectCase", func(ctx context.Context, rid string) error {
			_, err := s.cases.RejectCase(ctx, &ecogridv1.RejectCaseRequest{CaseId: id, RequestId: rid, Reason: "duplicate of an earlier report of the same site"})
			return err
		}) {
			s.work.CasesRejected.Add(1)
		}
		return
	}
	if !sup.step(ctx, sup.sess, id, "AcceptCase", func(ctx context.Context, rid string) error {
		_, err := s.cases.AcceptCase(ctx, &ecogridv1.AcceptCaseRequest{CaseId: id, RequestId: rid, Note: "taken on by the township"})
		return err
	}) {
		return
	}
	s.work.CasesAccepted.Add(1)
	// The handler: the reporter when they work in this township, else
	// an inspector of the case's village or township.
	var handler *inspector
	for _, in := range sup.town.inspectors {
		if in.sess.personID == c.GetReporterId() {
			handler = in
			break
		}
		if handler == nil && in.village.code == c.GetVillageCode() {
			handler = in
		}
	}
	if handler == nil {
		if len(sup.town.inspectors) == 0 {
			return
		}
		handler = sup.town.inspectors[0]
	}
	if !sup.step(ctx, sup.sess, id, "DispatchCase", func(ctx context.Context, rid string) error {
		_, err := s.cases.DispatchCase(ctx, &ecogridv1.DispatchCaseRequest{CaseId: id, RequestId: rid, HandlerId: handler.sess.personID, Note: "rectify and report back"})
		return err
	}) {
		return
	}
	hs := handler.sess
	if !sup.step(ctx, hs, id, "StartWork", func(ctx context.Context, rid string) error {
		_, err := s.cases.StartWork(ctx, &ecogridv1.StartWorkRequest{CaseId: id, RequestId: rid, Note: "on site"})
		return err
	}) {
		return
	}
	// Evidence photo taken at the case's position.
	lat, lon := c.GetPosition().GetLatitude(), c.GetPosition().GetLongitude()
	if lat == 0 && lon == 0 {
		lon, lat = handler.village.area.minLon, handler.village.area.minLat
	}
	sup.mu.Lock()
	p, err := takePhoto(sup.rng, lat, lon, time.Now())
	sup.mu.Unlock()
	if err != nil {
		s.log.Error("making a rectification photo", "error", err)
		return
	}
	x, _ := sup.rand()
	if err := s.upload(ctx, hs, p, "", x < s.cfg.DropShare); err != nil {
		return
	}
	if !sup.step(ctx, hs, id, "SubmitRectification", func(ctx context.Context, rid string) error {
		_, err := s.cases.SubmitRectification(ctx, &ecogridv1.SubmitRectificationRequest{CaseId: id, RequestId: rid,
			Note: "site cleaned up, source removed", PhotoSha256: []string{p.sha}})
		return err
	}) {
		return
	}
	// Another inspector of the cell checks the rectification on site (the
	// handler may not verify their own work); with nobody else there the
	// case waits, rectified.
	var verifier *inspector
	for _, in := range sup.town.inspectors {
		if in != handler && in.village.code == c.GetVillageCode() && c.GetVillageCode() != "" {
			verifier = in
			break
		}
	}
	if verifier == nil {
		s.work.CasesUnverified.Add(1)
		return
	}
	if !sup.step(ctx, verifier.sess, id, "VerifyRectification", func(ctx context.Context, rid string) error {
		_, err := s.cases.VerifyRectification(ctx, &ecogridv1.VerifyRectificationRequest{CaseId: id, RequestId: rid, Note: "checked on site"})
		return err
	}) {
		return
	}
	if sup.step(ctx, sup.sess, id, "CloseCase", func(ctx context.Context, rid string) error {
		_, err := s.cases.CloseCase(ctx, &ecogridv1.CloseCaseRequest{CaseId: id, RequestId: rid, Note: "closed after on-site verification"})
		return err
	}) {
		s.work.CasesClosed.Add(1)
	}
}
