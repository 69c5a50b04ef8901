package gateway_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// TestConsoleAssessment runs the assessment story (web/e2e/assessment.mjs)
// in headless Chromium against a real stack. Through the API it defines an
// external indicator with a heavy weight, enters its value for one village
// and has the supervisor accept the filed case; in the console the county
// officer then sees the villages of the township ranked, both charts drawn,
// the response time drilled down to that case, the CSV export, a value
// entered in the form, the previous month closed (its ledger record shown)
// and a value entered afterwards about it flagged late in this month; the
// supervisor and an inspector of another township get no entry and a
// refusal.
func TestConsoleAssessment(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole stack and a browser")
	}
	web := consoleTools(t)
	s := startStack(t)
	c := s.fileViolation(t, "养殖场向沟渠排放污水")
	officer, supervisor := s.people["officer"], s.people["supervisor"]
	if _, err := ecogridv1.NewCaseServiceClient(s.cased).AcceptCase(as(supervisor), &ecogridv1.AcceptCaseRequest{CaseId: c.GetId(), RequestId: uuid.NewString(), Note: "受理"}); err != nil {
		t.Fatalf("accept: %v", err)
	}
	var town []*ecogridv1.GridNode
	for _, v := range s.villages {
		if v.GetParentCode() == s.townA {
			town = append(town, v)
		}
	}
	if len(town) < 3 || town[0].GetCode() != s.villageA.GetCode() {
		t.Fatalf("township %s has %d villages, first %s", s.townA, len(town), town[0].GetCode())
	}
	as_ := ecogridv1.NewAssessmentServiceClient(s.gridd)
	ctx := as(officer)
	if _, err := as_.DefineIndicator(ctx, &ecogridv1.DefineIndicatorRequest{CountyCode: s.CountyCode, Indicator: &ecogridv1.Indicator{
		Code: "water_quality", Name: "水质达标率", Definition: "断面水质达标天数占比（生态环境局提供）", Unit: "%", Direction: "higher", Best: 100, Worst: 60, Source: "external"}}); err != nil {
		t.Fatalf("define: %v", err)
	}
	sets, err := as_.ListWeightSets(ctx, &ecogridv1.ListWeightSetsRequest{CountyCode: s.CountyCode})
	if err != nil {
		t.Fatalf("weight sets: %v", err)
	}
	weights := map[string]float64{}
	for _, ws := range sets.GetWeightSets() {
		if ws.GetAreaKind() == "agricultural" {
			weights = ws.GetWeights()
		}
	}
	if weights == nil {
		t.Fatalf("no agricultural weight set in %v", sets)
	}
	weights["water_quality"] = 1
	if _, err := as_.SetNodeKind(ctx, &ecogridv1.SetNodeKindRequest{NodeCode: s.townA, AreaKind: "agricultural"}); err != nil {
		t.Fatalf("kind: %v", err)
	}
	if _, err := as_.SetWeights(ctx, &ecogridv1.SetWeightsRequest{CountyCode: s.CountyCode, AreaKind: "agricultural", Weights: weights}); err != nil {
		t.Fatalf("weights: %v", err)
	}
	cst := time.Now().In(time.FixedZone("CST", 8*3600))
	month := cst.Format("2006-01")
	prev := time.Date(cst.Year(), cst.Month()-1, 1, 0, 0, 0, 0, cst.Location()).Format("2006-01")
	if _, err := as_.RecordIndicatorValue(ctx, &ecogridv1.RecordIndicatorValueRequest{ValueId: uuid.NewString(), NodeCode: s.villageA.GetCode(), Period: month,
		Indicator: "water_quality", Value: 98, EvidenceNote: "县生态环境局监测月报"}); err != nil {
		t.Fatalf("value: %v", err)
	}

	users := s.storyUsers("officer", "supervisor", "outsider")
	story, _ := json.Marshal(map[string]any{
		"users": users, "county": s.CountyCode, "township": s.townA, "caseId": c.GetId(),
		"villageA": map[string]string{"code": town[0].GetCode(), "name": town[0].GetName()},
		"village2": map[string]string{"code": town[1].GetCode(), "name": town[1].GetName()},
		"village3": map[string]string{"code": town[2].GetCode(), "name": town[2].GetName()},
		"villages": len(town), "month": month, "prev": prev,
	})
	runStory(t, web, "e2e/assessment.mjs", "assessment", s.ConsoleURL, story)
}
