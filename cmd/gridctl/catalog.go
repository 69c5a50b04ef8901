package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

// runPersons is `gridctl persons list`: people the caller may see.
func runPersons(ctx context.Context, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(os.Stderr, "usage: gridctl persons list [-node code] [-name text] [-limit n]")
		return flag.ErrHelp
	}
	if args[0] != "list" {
		return fmt.Errorf("unknown persons command %q (want list)", args[0])
	}
	fs := flag.NewFlagSet("gridctl persons list", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var node, name string
	var limit int
	fs.StringVar(&node, "node", "", "only people assigned at or under this grid node")
	fs.StringVar(&name, "name", "", "only people whose name contains this")
	fs.IntVar(&limit, "limit", 200, "most people to list (0: all)")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := ecogridv1.NewPeopleServiceClient(conn)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PERSON\tNAME\tCOUNTY\tEMPLOYEE_CODE\tPHONE")
	n, token := 0, ""
	for {
		resp, err := cl.ListPersons(ctx, &ecogridv1.ListPersonsRequest{Page: &ecogridv1.PageRequest{PageSize: 200, PageToken: token},
			NodeCode: node, NameContains: name})
		if err != nil {
			return err
		}
		for _, p := range resp.GetPersons() {
			if limit > 0 && n >= limit {
				return tw.Flush()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.GetId(), p.GetName(), p.GetCountyCode(), p.GetEmployeeCode(), p.GetPhone())
			n++
		}
		if token = resp.GetNextPageToken(); token == "" {
			return tw.Flush()
		}
	}
}

// runCategories is `gridctl categories list`: a county's report
// categories, codes beside names.
func runCategories(ctx context.Context, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(os.Stderr, "usage: gridctl categories list [-county code]")
		return flag.ErrHelp
	}
	if args[0] != "list" {
		return fmt.Errorf("unknown categories command %q (want list)", args[0])
	}
	fs := flag.NewFlagSet("gridctl categories list", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var county string
	fs.StringVar(&county, "county", "", "county code (the caller's county when empty)")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewFieldServiceClient(conn).ListCategories(ctx, &ecogridv1.ListCategoriesRequest{CountyCode: county})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tNAME\tCOUNTY")
	for _, cat := range resp.GetCategories() {
		county := cat.GetCountyCode()
		if county == "" {
			county = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cat.GetCode(), cat.GetName(), county)
	}
	return tw.Flush()
}
