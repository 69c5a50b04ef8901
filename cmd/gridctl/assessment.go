package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

const assessmentUsage = `usage:
  gridctl assessment indicators -county 130123
  gridctl assessment define -county 130123 -code water_quality -name 水质达标率 -unit % -direction higher -best 100 -worst 60 [-definition TEXT]
  gridctl assessment weights -county 130123 [-kind urban code=weight ...]   list, or replace a kind's weight set
  gridctl assessment kind -node 130123101 -kind ecological
  gridctl assessment value -node 130123101201 -period 2026-Q1 -indicator water_quality -value 92.5 -note TEXT [-attach FILE]
  gridctl assessment scorecards -county 130123 -period 2026 [-level village|township|person] [-parent CODE] [-trend 2] [-format json|csv|xlsx|pdf] [-o FILE]
  gridctl assessment detail -county 130123 -period 2026 -level village -code 130123101201 -indicator overdue_count
  gridctl assessment close -county 130123 -period 2026-Q1`

// runAssessment is "gridctl assessment": the county office's
// assessment (考核) through AssessmentService.
func runAssessment(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, assessmentUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gridctl assessment "+args[0], flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	county := fs.String("county", "", "six-digit county code")
	node := fs.String("node", "", "township or village code")
	period := fs.String("period", "", "2026-03 (month), 2026-Q1 (quarter) or 2026 (year)")
	level := fs.String("level", "village", "village, township or person")
	parent := fs.String("parent", "", "only the scorecards under this township")
	trend := fs.Int("trend", 0, "previous periods to compare with (0-6)")
	format := fs.String("format", "", "json, csv, xlsx or pdf (default: a table on stdout)")
	out := fs.String("o", "", "output file for -format (default stdout)")
	code := fs.String("code", "", "indicator code (define), or scorecard code (detail: node code or person id)")
	indicator := fs.String("indicator", "", "indicator code")
	name := fs.String("name", "", "indicator name")
	definition := fs.String("definition", "", "indicator definition")
	unit := fs.String("unit", "", "indicator unit")
	direction := fs.String("direction", "higher", "higher or lower is better")
	best := fs.Float64("best", 100, "value scoring 100")
	worst := fs.Float64("worst", 0, "value scoring 0")
	kind := fs.String("kind", "", "kind of area: ecological, agricultural, urban or the county's own")
	value := fs.Float64("value", 0, "the value entered")
	note := fs.String("note", "", "evidence note: who measured it, where it is documented")
	attach := fs.String("attach", "", "evidence file to attach (at most 2 MiB)")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	conn, ctx, err := gc.serverConn.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ecogridv1.NewAssessmentServiceClient(conn)
	lvl, err := parseLevel(*level)
	if err != nil {
		return err
	}
	switch args[0] {
	case "indicators":
		resp, err := client.ListIndicators(ctx, &ecogridv1.ListIndicatorsRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tNAME\tUNIT\tBETTER\tSCORING\tSOURCE")
		for _, ind := range resp.GetIndicators() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ind.GetCode(), ind.GetName(), ind.GetUnit(), ind.GetDirection(), ind.GetScoringRule(), ind.GetSource())
		}
		return tw.Flush()
	case "define":
		source := "external"
		if isBuiltinCode(ctx, client, *county, *code) {
			source = "builtin"
		}
		resp, err := client.DefineIndicator(ctx, &ecogridv1.DefineIndicatorRequest{CountyCode: *county, Indicator: &ecogridv1.Indicator{
			Code: *code, Name: *name, Definition: *definition, Unit: *unit, Direction: *direction, Best: *best, Worst: *worst, Source: source}})
		if err != nil {
			return err
		}
		fmt.Printf("defined %s (%s): %s\n", resp.GetIndicator().GetCode(), resp.GetIndicator().GetSource(), resp.GetIndicator().GetScoringRule())
		return nil
	case "weights":
		if *kind == "" {
			resp, err := client.ListWeightSets(ctx, &ecogridv1.ListWeightSetsRequest{CountyCode: *county})
			if err != nil {
				return err
			}
			for _, ws := range resp.GetWeightSets() {
				var parts []string
				for k, v := range ws.GetWeights() {
					parts = append(parts, k+"="+strconv.FormatFloat(v, 'f', -1, 64))
				}
				slices.Sort(parts)
				fmt.Printf("%s\t%s\n", ws.GetAreaKind(), strings.Join(parts, " "))
			}
			return nil
		}
		w := map[string]float64{}
		for _, a := range fs.Args() {
			k, v, ok := strings.Cut(a, "=")
			x, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil {
				return fmt.Errorf("weight %q is not code=number", a)
			}
			w[k] = x
		}
		if _, err := client.SetWeights(ctx, &ecogridv1.SetWeightsRequest{CountyCode: *county, AreaKind: *kind, Weights: w}); err != nil {
			return err
		}
		fmt.Printf("weights of %s set (%d indicators)\n", *kind, len(w))
		return nil
	case "kind":
		if _, err := client.SetNodeKind(ctx, &ecogridv1.SetNodeKindRequest{NodeCode: *node, AreaKind: *kind}); err != nil {
			return err
		}
		fmt.Printf("%s is %s\n", *node, *kind)
		return nil
	case "value":
		req := &ecogridv1.RecordIndicatorValueRequest{ValueId: uuid.NewString(), NodeCode: *node, Period: *period, Indicator: *indicator,
			Value: *value, EvidenceNote: *note}
		if *attach != "" {
			data, err := os.ReadFile(*attach)
			if err != nil {
				return err
			}
			req.Attachment, req.AttachmentName = data, filepath.Base(*attach)
		}
		resp, err := client.RecordIndicatorValue(ctx, req)
		if err != nil {
			return err
		}
		v := resp.GetValue()
		late := ""
		if v.GetLate() {
			late = " (the period is closed: counted in the next period, flagged late)"
		}
		fmt.Printf("value %s recorded, ledger %s%s\n", v.GetValueId(), v.GetLedgerRecord(), late)
		return nil
	case "scorecards":
		f, err := parseFormat(*format)
		if err != nil {
			return err
		}
		resp, err := client.GetScorecards(ctx, &ecogridv1.GetScorecardsRequest{CountyCode: *county, Period: *period, Level: lvl,
			ParentCode: *parent, TrendPeriods: int32(*trend), Format: f})
		if err != nil {
			return err
		}
		switch {
		case *format == "json":
			return writeOut(*out, resp.GetScorecardsJson())
		case f != ecogridv1.ScorecardFormat_SCORECARD_FORMAT_UNSPECIFIED:
			return writeOut(*out, resp.GetDocument())
		}
		state := "open"
		if resp.GetClosed() {
			state = "closed (frozen)"
		}
		fmt.Printf("%s %s, %s, %d scorecards\n", *county, resp.GetPeriod(), state, len(resp.GetScorecards()))
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RANK\tCODE\tNAME\tKIND\tTOTAL\tLATE\tTREND")
		for _, s := range resp.GetScorecards() {
			var tr []string
			for _, t := range s.GetTrend() {
				tr = append(tr, t.GetPeriod()+":"+strconv.FormatFloat(t.GetTotal(), 'f', 2, 64))
			}
			fmt.Fprintf(tw, "%d/%d\t%s\t%s\t%s\t%.2f\t%d\t%s\n", s.GetRank(), s.GetSiblings(), s.GetCode(), s.GetName(), s.GetAreaKind(),
				s.GetTotal(), s.GetLateItems(), strings.Join(tr, " "))
		}
		return tw.Flush()
	case "detail":
		resp, err := client.GetFigureDetail(ctx, &ecogridv1.GetFigureDetailRequest{CountyCode: *county, Period: *period, Level: lvl, Code: *code, Indicator: *indicator})
		if err != nil {
			return err
		}
		fg := resp.GetFigure()
		fmt.Printf("%s of %s in %s: value %v, score %v, weight %v, %d items (%d late)\n", fg.GetIndicator(), *code, *period,
			fg.GetValue(), fg.GetScore(), fg.GetWeight(), fg.GetItemCount(), fg.GetLateItems())
		for _, it := range fg.GetItems() {
			late := ""
			if it.GetLate() {
				late = "\tLATE"
			}
			fmt.Printf("%s\t%s\t%s %s\t%s\t%s%s\n", it.GetRef(), it.GetAt().AsTime().Format("2006-01-02 15:04"), it.GetSubjectType(),
				it.GetSubjectId(), it.GetAction(), it.GetNodeCode(), late)
		}
		return nil
	case "close":
		resp, err := client.ClosePeriod(ctx, &ecogridv1.ClosePeriodRequest{CountyCode: *county, Period: *period})
		if err != nil {
			return err
		}
		fmt.Printf("%s %s closed: ledger record %s\n", *county, *period, resp.GetLedgerRecord())
		return nil
	}
	fmt.Fprintln(os.Stderr, assessmentUsage)
	return fmt.Errorf("unknown assessment command %q", args[0])
}

func parseLevel(s string) (ecogridv1.ScorecardLevel, error) {
	switch s {
	case "village":
		return ecogridv1.ScorecardLevel_SCORECARD_LEVEL_VILLAGE, nil
	case "township":
		return ecogridv1.ScorecardLevel_SCORECARD_LEVEL_TOWNSHIP, nil
	case "person":
		return ecogridv1.ScorecardLevel_SCORECARD_LEVEL_PERSON, nil
	}
	return 0, errors.New("-level must be village, township or person")
}

func parseFormat(s string) (ecogridv1.ScorecardFormat, error) {
	switch s {
	case "", "json":
		return ecogridv1.ScorecardFormat_SCORECARD_FORMAT_UNSPECIFIED, nil
	case "csv":
		return ecogridv1.ScorecardFormat_SCORECARD_FORMAT_CSV, nil
	case "xlsx":
		return ecogridv1.ScorecardFormat_SCORECARD_FORMAT_XLSX, nil
	case "pdf":
		return ecogridv1.ScorecardFormat_SCORECARD_FORMAT_PDF, nil
	}
	return 0, errors.New("-format must be json, csv, xlsx or pdf")
}

// isBuiltinCode asks the catalogue whether code is a built-in indicator.
func isBuiltinCode(ctx context.Context, client ecogridv1.AssessmentServiceClient, county, code string) bool {
	resp, err := client.ListIndicators(ctx, &ecogridv1.ListIndicatorsRequest{CountyCode: county})
	if err != nil {
		return false
	}
	for _, ind := range resp.GetIndicators() {
		if ind.GetCode() == code {
			return ind.GetSource() == "builtin"
		}
	}
	return false
}

func writeOut(path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := os.Stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
