package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

const departmentsUsage = `usage (DepartmentService on gridd, as the county office):
  gridctl departments create -county 130123 [-township 130123101] -code water_resources -zh 水利局 [-en "Water Resources"]
  gridctl departments list -county 130123
  gridctl departments cover -department ID -node CODE [-from 2026-01-01]
  gridctl departments uncover -department ID -node CODE [-at 2026-06-30]
  gridctl departments add-staff -department ID -person ID [-role staff|head] [-from 2026-01-01]
  gridctl departments end-staff -membership ID -reason "moved post" [-at 2026-06-30]
  gridctl departments staff -department ID
  gridctl departments categories -county 130123
  gridctl departments add-category -county 130123 -code straw_burning -zh 秸秆焚烧 [-en "straw burning"]
  gridctl departments route -county 130123 -category illegal_sand_mining [-zone-kind KIND] -lead ID [-cooperating ID,ID] -days 15
  gridctl departments routes -county 130123`

// runDepartments is `gridctl departments`: the county's departments,
// their area and staff, the taxonomy and the routing rules.
func runDepartments(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, departmentsUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gridctl departments "+args[0], flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	county := fs.String("county", "", "six-digit county code")
	township := fs.String("township", "", "township code of a township station")
	code := fs.String("code", "", "short code (lower-case letters, digits, _)")
	zh := fs.String("zh", "", "Chinese name")
	en := fs.String("en", "", "English name")
	dept := fs.String("department", "", "department id")
	node := fs.String("node", "", "grid node code")
	person := fs.String("person", "", "person id")
	role := fs.String("role", "staff", "head or staff")
	membership := fs.String("membership", "", "membership id")
	reason := fs.String("reason", "", "why the membership ends")
	from := fs.String("from", "", "from when (RFC 3339 or YYYY-MM-DD; default now)")
	at := fs.String("at", "", "when it ends (RFC 3339 or YYYY-MM-DD; default now)")
	category := fs.String("category", "", "category code")
	zoneKind := fs.String("zone-kind", "", "zone kind the rule is for (default any)")
	lead := fs.String("lead", "", "lead department id")
	coop := fs.String("cooperating", "", "cooperating department ids, comma-separated")
	days := fs.Int("days", 15, "the lead department's deadline in days")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	fromTS, err := parseWhen(*from)
	if err != nil {
		return err
	}
	atTS, err := parseWhen(*at)
	if err != nil {
		return err
	}
	conn, ctx, err := gc.serverConn.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := ecogridv1.NewDepartmentServiceClient(conn)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	switch args[0] {
	case "create":
		res, err := c.CreateDepartment(ctx, &ecogridv1.CreateDepartmentRequest{DepartmentId: uuid.NewString(), CountyCode: *county,
			TownshipCode: *township, Code: *code, NameZh: *zh, NameEn: *en})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, res.GetDepartment().GetDepartmentId())
	case "list":
		res, err := c.ListDepartments(ctx, &ecogridv1.ListDepartmentsRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "id\tcode\tname\ttownship\tcovers")
		for _, d := range res.GetDepartments() {
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", d.GetDepartmentId(), d.GetCode(), d.GetNameZh(), d.GetNameEn(), d.GetTownshipCode(), strings.Join(d.GetCoveredNodeCodes(), ","))
		}
	case "cover":
		_, err = c.CoverArea(ctx, &ecogridv1.CoverAreaRequest{DepartmentId: *dept, NodeCode: *node, ValidFrom: fromTS})
	case "uncover":
		_, err = c.UncoverArea(ctx, &ecogridv1.UncoverAreaRequest{DepartmentId: *dept, NodeCode: *node, EndedAt: atTS})
	case "add-staff":
		res, err := c.AddStaff(ctx, &ecogridv1.AddStaffRequest{MembershipId: uuid.NewString(), DepartmentId: *dept, PersonId: *person, Role: *role, ValidFrom: fromTS})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, res.GetMembership().GetMembershipId())
	case "end-staff":
		_, err = c.EndStaff(ctx, &ecogridv1.EndStaffRequest{MembershipId: *membership, EndedAt: atTS, Reason: *reason})
	case "staff":
		res, err := c.ListStaff(ctx, &ecogridv1.ListStaffRequest{DepartmentId: *dept})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "membership\tperson\trole\tfrom\tto\treason")
		for _, m := range res.GetMemberships() {
			to := ""
			if m.GetValidTo() != nil {
				to = m.GetValidTo().AsTime().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.GetMembershipId(), m.GetPersonId(), m.GetRole(), m.GetValidFrom().AsTime().Format("2006-01-02 15:04"), to, m.GetEndReason())
		}
	case "categories":
		res, err := c.ListTaxonomy(ctx, &ecogridv1.ListTaxonomyRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		for _, cat := range res.GetCategories() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cat.GetCode(), cat.GetNameZh(), cat.GetNameEn(), cat.GetCountyCode())
		}
	case "add-category":
		_, err = c.AddTaxonomyCategory(ctx, &ecogridv1.AddTaxonomyCategoryRequest{CountyCode: *county, Code: *code, NameZh: *zh, NameEn: *en})
	case "route":
		var ids []string
		if *coop != "" {
			ids = strings.Split(*coop, ",")
		}
		_, err = c.SetRoute(ctx, &ecogridv1.SetRouteRequest{Route: &ecogridv1.Route{CountyCode: *county, Category: *category, ZoneKind: *zoneKind,
			LeadDepartmentId: *lead, CooperatingDepartmentIds: ids, DeadlineDays: int32(*days)}})
	case "routes":
		res, err := c.ListRoutes(ctx, &ecogridv1.ListRoutesRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "category\tzone kind\tlead\tcooperating\tdays")
		for _, r := range res.GetRoutes() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.GetCategory(), r.GetZoneKind(), r.GetLeadDepartmentId(), strings.Join(r.GetCooperatingDepartmentIds(), ","), r.GetDeadlineDays())
		}
	default:
		fmt.Fprintln(os.Stderr, departmentsUsage)
		return fmt.Errorf("gridctl departments: unknown command %q", args[0])
	}
	return err
}

const webhooksUsage = `usage (WebhookService on cased, as the county office):
  gridctl webhooks add -county 130123 -url https://water.example/ecogrid [-types opened,transferred] [-json] [-max-batch 100]
      prints the subscriber id and its secret: the only time the secret is shown
  gridctl webhooks list -county 130123
  gridctl webhooks disable -subscriber ID
  gridctl webhooks deliveries -subscriber ID [-since 2026-01-01] [-n 100]
  gridctl webhooks replay -subscriber ID -since 2026-01-01T08:00:00+08:00`

// runWebhooks is `gridctl webhooks`: register, list and disable the
// county's subscribers, read a delivery log, replay from a point in time.
func runWebhooks(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, webhooksUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gridctl webhooks "+args[0], flag.ContinueOnError)
	var sc serverConn
	sc.register(fs, "cased", "CASED_ADDR", "127.0.0.1:7444", "access token")
	county := fs.String("county", "", "six-digit county code")
	url := fs.String("url", "", "receiver URL (http or https)")
	types := fs.String("types", "", "case event types, comma-separated (default all)")
	asJSON := fs.Bool("json", false, "deliver protojson instead of binary protobuf")
	maxBatch := fs.Int("max-batch", 1, "most events per POST; above 1 every POST is a CaseEventBatch")
	sub := fs.String("subscriber", "", "subscriber id")
	since := fs.String("since", "", "publication time (RFC 3339 or YYYY-MM-DD)")
	n := fs.Int("n", 100, "at most this many deliveries")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	sinceTS, err := parseWhen(*since)
	if err != nil {
		return err
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := ecogridv1.NewWebhookServiceClient(conn)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	switch args[0] {
	case "add":
		var ts []string
		if *types != "" {
			ts = strings.Split(*types, ",")
		}
		res, err := c.CreateSubscriber(ctx, &ecogridv1.CreateSubscriberRequest{SubscriberId: uuid.NewString(), CountyCode: *county, Url: *url, EventTypes: ts, Json: *asJSON, MaxBatch: int32(*maxBatch)})
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "subscriber\t%s\nsecret\t%s\n", res.GetSubscriber().GetSubscriberId(), res.GetSecret())
		fmt.Fprintln(os.Stderr, "keep the secret now: it is not shown again")
	case "list":
		res, err := c.ListSubscribers(ctx, &ecogridv1.ListSubscribersRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "subscriber\turl\ttypes\tjson\tdisabled")
		for _, s := range res.GetSubscribers() {
			disabled := ""
			if s.GetDisabledAt() != nil {
				disabled = s.GetDisabledAt().AsTime().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", s.GetSubscriberId(), s.GetUrl(), strings.Join(s.GetEventTypes(), ","), s.GetJson(), disabled)
		}
	case "disable":
		_, err = c.DisableSubscriber(ctx, &ecogridv1.DisableSubscriberRequest{SubscriberId: *sub})
	case "deliveries":
		res, err := c.ListDeliveries(ctx, &ecogridv1.ListDeliveriesRequest{SubscriberId: *sub, Since: sinceTS, PageSize: int32(*n)})
		if err != nil {
			return err
		}
		for _, d := range res.GetDeliveries() {
			b, _ := protojson.Marshal(d)
			fmt.Fprintln(tw, string(b))
		}
	case "replay":
		if sinceTS == nil {
			return errors.New("a replay needs -since")
		}
		_, err = c.ReplaySubscriber(ctx, &ecogridv1.ReplaySubscriberRequest{SubscriberId: *sub, Since: sinceTS})
	default:
		fmt.Fprintln(os.Stderr, webhooksUsage)
		return fmt.Errorf("gridctl webhooks: unknown command %q", args[0])
	}
	return err
}
