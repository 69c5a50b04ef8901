package field

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/scope"
)

func (e *env) upload(t testing.TB, c scope.Caller, data []byte) {
	t.Helper()
	u, err := e.f.BeginUpload(context.Background(), c, header(data))
	if err != nil {
		t.Fatal(err)
	}
	if st := send(t, u, data, 0, 8<<10); !st.Complete {
		t.Fatalf("upload not complete: %+v", st)
	}
}

func (e *env) linkEvidence(ev Evidence) error {
	return database.InTx(context.Background(), e.pool, func(tx pgx.Tx) error { return LinkEvidence(context.Background(), tx, ev) })
}

// A rectification photo linked to a case is downloadable by whoever's
// scope covers the case's node — the township supervisor who verifies the
// rectification — and by nobody outside it.
func TestCaseEvidenceDownloadFollowsTheCasesNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	photo := testJPEG(t, 29.0102, 106.0502, e.clock.Now().Add(-5*time.Minute), 20<<10)
	e.upload(t, inspectorA, photo) // sent with no report: a rectification photo
	eastSupervisor := caller(uuid.NewString(), scope.RoleTownshipSupervisor, townshipEast)

	read := func(c scope.Caller) ([]byte, error) {
		_, rd, err := e.f.OpenPhoto(ctx, c, sum(photo))
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		return io.ReadAll(rd)
	}
	_, err := read(supervisor)
	wantCode(t, err, codes.NotFound) // not yet evidence of anything

	if err := e.linkEvidence(Evidence{CaseID: uuid.NewString(), CountyCode: testCounty, NodeCode: villageWS,
		SubmittedBy: inspectorAID, PhotoSHA256: []string{sum(photo)}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []scope.Caller{supervisor, officer, inspectorA} {
		if b, err := read(c); err != nil || !bytes.Equal(b, photo) {
			t.Fatalf("%v cannot download the evidence: %v", c.Grants, err)
		}
	}
	for _, c := range []scope.Caller{eastSupervisor, inspectorB, officer2} {
		_, err := read(c)
		wantCode(t, err, codes.NotFound)
	}
}

// LinkEvidence links only photos whose bytes reached field: not a hash
// never uploaded, and not a photo of another county's report.
func TestLinkEvidenceRefusesPhotosThatAreNotEvidence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()

	never := sum([]byte("a photo nobody uploaded"))
	err := e.linkEvidence(Evidence{CaseID: uuid.NewString(), CountyCode: testCounty, NodeCode: villageWS,
		SubmittedBy: inspectorAID, PhotoSHA256: []string{never}})
	wantCode(t, err, codes.FailedPrecondition)

	// An inspector of the other county files a report with a photo.
	otherInspector := caller(uuid.NewString(), scope.RoleInspector, otherVillage)
	photo := testJPEG(t, 30.05, 106.05, e.clock.Now().Add(-5*time.Minute), 20<<10)
	e.upload(t, otherInspector, photo)
	d := e.draft(30.05, 106.05)
	d.PhotoSHA256 = []string{sum(photo)}
	if _, _, err := e.f.SubmitReport(ctx, otherInspector, d); err != nil {
		t.Fatal(err)
	}
	// A supervisor of this county cannot cite it for a case here...
	err = e.linkEvidence(Evidence{CaseID: uuid.NewString(), CountyCode: testCounty, NodeCode: villageWS,
		SubmittedBy: supervisorID, PhotoSHA256: []string{sum(photo)}})
	wantCode(t, err, codes.FailedPrecondition)
	// ...nor slip it in beside a real photo: nothing is linked.
	own := testJPEG(t, 29.0102, 106.0502, e.clock.Now().Add(-5*time.Minute), 20<<10)
	e.upload(t, supervisor, own)
	err = e.linkEvidence(Evidence{CaseID: uuid.NewString(), CountyCode: testCounty, NodeCode: villageWS,
		SubmittedBy: supervisorID, PhotoSHA256: []string{sum(own), sum(photo)}})
	wantCode(t, err, codes.FailedPrecondition)
	if n := count(t, e.pool, `SELECT count(*) FROM field.case_evidence`); n != 0 {
		t.Fatalf("%d evidence rows linked by refused calls", n)
	}
	// A case of the photo's own county may cite it.
	if err := e.linkEvidence(Evidence{CaseID: uuid.NewString(), CountyCode: otherCounty, NodeCode: otherVillage,
		SubmittedBy: uuid.NewString(), PhotoSHA256: []string{sum(photo)}}); err != nil {
		t.Fatalf("evidence of the photo's own county: %v", err)
	}
}
