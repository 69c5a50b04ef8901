package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

// casesConn is the connection of the cases commands: cased, with the
// token refreshed through gridd when it runs out.
func casesConn(fs *flag.FlagSet) *serverConn {
	sc := &serverConn{}
	sc.register(fs, "cased", "CASED_ADDR", "127.0.0.1:7444", "access token")
	return sc
}

func enumName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

// parseStates reads "reported,accepted" into case states.
func parseStates(states string) ([]ecogridv1.CaseState, error) {
	var out []ecogridv1.CaseState
	for _, s := range strings.Split(states, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, ok := ecogridv1.CaseState_value["CASE_STATE_"+strings.ToUpper(s)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("unknown case state %q (want reported, accepted, rejected, dispatched, in_progress, rectified, verified or closed)", s)
		}
		out = append(out, ecogridv1.CaseState(v))
	}
	return out, nil
}

// runCasesList is `gridctl cases list`: one line per case, filtered.
func runCasesList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl cases list", flag.ContinueOnError)
	sc := casesConn(fs)
	var states, node string
	var overdue, escalated bool
	var limit int
	fs.StringVar(&states, "state", "", "comma-separated states (reported, accepted, dispatched, in_progress, rectified, verified, closed, rejected)")
	fs.StringVar(&node, "node", "", "only cases inside this grid node (county, township or village code)")
	fs.BoolVar(&overdue, "overdue", false, "only cases past their rectification deadline")
	fs.BoolVar(&escalated, "escalated", false, "only cases under county supervision (督办)")
	fs.IntVar(&limit, "limit", 100, "most cases to list (0: all)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	st, err := parseStates(states)
	if err != nil {
		return err
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := ecogridv1.NewCaseServiceClient(conn)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSTATE\tSEVERITY\tCATEGORY\tVILLAGE\tREPORTED\tDEADLINE\tOVERDUE\tHANDLER")
	n, token := 0, ""
	for {
		resp, err := cl.ListCases(ctx, &ecogridv1.ListCasesRequest{Page: &ecogridv1.PageRequest{PageSize: 200, PageToken: token},
			States: st, NodeCode: node, OverdueOnly: overdue, EscalatedOnly: escalated})
		if err != nil {
			return err
		}
		for _, c := range resp.GetCases() {
			if limit > 0 && n >= limit {
				return tw.Flush()
			}
			od := ""
			if c.GetOverdue() {
				od = fmt.Sprintf("%dd", c.GetOverdueDays())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.GetId(), caseState(c), caseSeverity(c), c.GetCategory(),
				c.GetVillageCode(), fmtTime(c.GetReportedAt()), fmtTime(c.GetDeadline()), od, c.GetHandlerId())
			n++
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return tw.Flush()
}

// runCasesShow is `gridctl cases show -id ID`: the case, the steps the
// caller may take next, and its timeline.
func runCasesShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl cases show", flag.ContinueOnError)
	sc := casesConn(fs)
	var id string
	fs.StringVar(&id, "id", "", "case id (required)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		return errors.New("-id is required")
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := ecogridv1.NewCaseServiceClient(conn)
	resp, err := cl.GetCase(ctx, &ecogridv1.GetCaseRequest{CaseId: id})
	if err != nil {
		return err
	}
	c := resp.GetCase()
	tl, err := cl.GetCaseTimeline(ctx, &ecogridv1.GetCaseTimelineRequest{CaseId: id})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("case", c.GetId())
	row("state", caseState(c))
	row("severity", caseSeverity(c))
	row("category", c.GetCategory())
	row("village", c.GetVillageCode())
	row("description", c.GetDescription())
	row("reported at", fmtTime(c.GetReportedAt()))
	row("supervisor", c.GetSupervisorId())
	row("handler", c.GetHandlerId())
	row("deadline", fmtTime(c.GetDeadline()))
	if c.GetOverdue() {
		row("overdue", fmt.Sprintf("%d days", c.GetOverdueDays()))
	}
	if c.GetEscalated() {
		row("escalated", fmtTime(c.GetEscalatedAt())+" "+c.GetEscalationReason())
	}
	row("closed at", fmtTime(c.GetClosedAt()))
	var next []string
	for _, a := range c.GetNextSteps() {
		next = append(next, actionVerb(a))
	}
	row("next steps", strings.Join(next, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println("\ntimeline:")
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, e := range tl.GetEntries() {
		actor := e.GetActorId()
		if actor == "" {
			actor = "system"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s → %s\t%s (%s)\t%s\n", fmtTime(e.GetAt()), enumName(e.GetAction().String(), "CASE_ACTION_"),
			enumName(e.GetFromState().String(), "CASE_STATE_"), enumName(e.GetToState().String(), "CASE_STATE_"), actor, e.GetActorRole(), e.GetNote())
	}
	return tw.Flush()
}

// actionVerb is the `gridctl cases act` verb of a case action.
func actionVerb(a ecogridv1.CaseAction) string {
	return strings.ReplaceAll(enumName(a.String(), "CASE_ACTION_"), "_", "-")
}

// caseActInput is what a step may take from the command line.
type caseActInput struct {
	id, requestID, note, handler string
	deadline                     time.Time
	days                         int
	photos                       []string
}

// caseSteps are the steps `gridctl cases act` takes, by verb: every step
// of the case workflow the CaseService offers an operator.
var caseSteps = map[string]func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error){
	"accept": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.AcceptCase(ctx, &ecogridv1.AcceptCaseRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note})
		return r.GetCase(), err
	},
	"reject": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.RejectCase(ctx, &ecogridv1.RejectCaseRequest{CaseId: in.id, RequestId: in.requestID, Reason: in.note})
		return r.GetCase(), err
	},
	"dispatch": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		req := &ecogridv1.DispatchCaseRequest{CaseId: in.id, RequestId: in.requestID, HandlerId: in.handler, Note: in.note}
		if !in.deadline.IsZero() {
			req.Deadline = timestamppb.New(in.deadline)
		}
		r, err := cl.DispatchCase(ctx, req)
		return r.GetCase(), err
	},
	"start-work": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.StartWork(ctx, &ecogridv1.StartWorkRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note})
		return r.GetCase(), err
	},
	"submit-rectification": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.SubmitRectification(ctx, &ecogridv1.SubmitRectificationRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note, PhotoSha256: in.photos})
		return r.GetCase(), err
	},
	"verify": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.VerifyRectification(ctx, &ecogridv1.VerifyRectificationRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note})
		return r.GetCase(), err
	},
	"close": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.CloseCase(ctx, &ecogridv1.CloseCaseRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note})
		return r.GetCase(), err
	},
	"return": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.ReturnCase(ctx, &ecogridv1.ReturnCaseRequest{CaseId: in.id, RequestId: in.requestID, Reason: in.note})
		return r.GetCase(), err
	},
	"request-extension": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.RequestExtension(ctx, &ecogridv1.RequestExtensionRequest{CaseId: in.id, RequestId: in.requestID, Days: int32(in.days), Reason: in.note})
		return r.GetCase(), err
	},
	"approve-extension": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.ApproveExtension(ctx, &ecogridv1.ApproveExtensionRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note})
		return r.GetCase(), err
	},
	"decline-extension": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.DeclineExtension(ctx, &ecogridv1.DeclineExtensionRequest{CaseId: in.id, RequestId: in.requestID, Note: in.note})
		return r.GetCase(), err
	},
	"reopen": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.ReopenCase(ctx, &ecogridv1.ReopenCaseRequest{CaseId: in.id, RequestId: in.requestID, Reason: in.note})
		return r.GetCase(), err
	},
	"escalate": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.EscalateCase(ctx, &ecogridv1.EscalateCaseRequest{CaseId: in.id, RequestId: in.requestID, Reason: in.note})
		return r.GetCase(), err
	},
	"reassign": func(ctx context.Context, cl ecogridv1.CaseServiceClient, in caseActInput) (*ecogridv1.Case, error) {
		r, err := cl.ReassignCase(ctx, &ecogridv1.ReassignCaseRequest{CaseId: in.id, RequestId: in.requestID, Reason: in.note, HandlerId: in.handler})
		return r.GetCase(), err
	},
}

func caseStepNames() []string {
	return []string{"accept", "reject", "dispatch", "start-work", "submit-rectification", "verify", "close", "return",
		"request-extension", "approve-extension", "decline-extension", "reopen", "escalate", "reassign"}
}

// runCasesAct is `gridctl cases act STEP -id ID …`: one workflow step.
// The request id makes a retried command (a lost answer) take the step
// once; pass the same -request-id to retry.
func runCasesAct(ctx context.Context, args []string) error {
	usage := "usage: gridctl cases act <" + strings.Join(caseStepNames(), "|") + "> -id CASE [-note text] [-handler uuid] [-deadline 2006-01-02] [-days n] [-photo sha256,…]"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(os.Stderr, usage)
		return flag.ErrHelp
	}
	step, ok := caseSteps[args[0]]
	if !ok {
		return fmt.Errorf("unknown step %q (want %s)", args[0], strings.Join(caseStepNames(), ", "))
	}
	fs := flag.NewFlagSet("gridctl cases act "+args[0], flag.ContinueOnError)
	sc := casesConn(fs)
	var in caseActInput
	var deadline, photos string
	fs.StringVar(&in.id, "id", "", "case id (required)")
	fs.StringVar(&in.requestID, "request-id", "", "idempotency key (a new UUID when empty; repeat it to retry safely)")
	fs.StringVar(&in.note, "note", "", "note, or the reason of a rejection, return, reopening, escalation or extension")
	fs.StringVar(&in.handler, "handler", "", "handler person id (dispatch, reassign)")
	fs.StringVar(&deadline, "deadline", "", "rectification deadline (dispatch; 2006-01-02 China time or RFC 3339; the county's rule when empty)")
	fs.IntVar(&in.days, "days", 0, "extension days (request-extension)")
	fs.StringVar(&photos, "photo", "", "comma-separated SHA-256 of uploaded evidence photos (submit-rectification)")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	if in.id == "" {
		return errors.New("-id is required")
	}
	if in.requestID == "" {
		in.requestID = uuid.NewString()
	}
	if deadline != "" {
		ts, err := parseReportTime("deadline", deadline)
		if err != nil {
			return err
		}
		in.deadline = ts.AsTime()
	}
	for _, p := range strings.Split(photos, ",") {
		if p = strings.TrimSpace(p); p != "" {
			in.photos = append(in.photos, p)
		}
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := step(ctx, ecogridv1.NewCaseServiceClient(conn), in)
	if err != nil {
		return err
	}
	var next []string
	for _, a := range c.GetNextSteps() {
		next = append(next, actionVerb(a))
	}
	fmt.Printf("%s\t%s\tnext: %s\n", c.GetId(), caseState(c), strings.Join(next, ", "))
	return nil
}

// runCasesRules is `gridctl cases rules [list|set]`: the county's
// rectification deadline per severity.
func runCasesRules(ctx context.Context, args []string) error {
	usage := "usage: gridctl cases rules list -county CODE | gridctl cases rules set -county CODE -severity minor|normal|serious|critical -days N -max-days M"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(os.Stderr, usage)
		return flag.ErrHelp
	}
	verb := args[0]
	if verb != "list" && verb != "set" {
		return fmt.Errorf("unknown rules command %q (want list or set)", verb)
	}
	fs := flag.NewFlagSet("gridctl cases rules "+verb, flag.ContinueOnError)
	sc := casesConn(fs)
	var county, severity string
	var days, maxDays int
	fs.StringVar(&county, "county", "", "county code (required)")
	if verb == "set" {
		fs.StringVar(&severity, "severity", "", "minor, normal, serious or critical (required)")
		fs.IntVar(&days, "days", 0, "days to rectify from dispatch (required)")
		fs.IntVar(&maxDays, "max-days", 0, "most days with extensions (required)")
	}
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	if county == "" {
		return errors.New("-county is required")
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := ecogridv1.NewCaseServiceClient(conn)
	if verb == "set" {
		sv, ok := ecogridv1.Severity_value["SEVERITY_"+strings.ToUpper(severity)]
		if !ok || sv == 0 {
			return fmt.Errorf("-severity must be minor, normal, serious or critical, not %q", severity)
		}
		if _, err := cl.SetDeadlineRule(ctx, &ecogridv1.SetDeadlineRuleRequest{CountyCode: county,
			Rule: &ecogridv1.DeadlineRule{Severity: ecogridv1.Severity(sv), RectifyDays: int32(days), MaxDays: int32(maxDays)}}); err != nil {
			return err
		}
	}
	resp, err := cl.ListDeadlineRules(ctx, &ecogridv1.ListDeadlineRulesRequest{CountyCode: county})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tRECTIFY_DAYS\tMAX_DAYS\tSOURCE")
	for _, r := range resp.GetRules() {
		src := "default"
		if r.GetCountySpecific() {
			src = "county"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", enumName(r.GetSeverity().String(), "SEVERITY_"), r.GetRectifyDays(), r.GetMaxDays(), src)
	}
	return tw.Flush()
}
