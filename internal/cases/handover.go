package cases

import (
	"context"
	"strings"
	"unicode/utf8"

	"ecogrid/internal/people"
)

// HandoverLister adapts the tracker to people.OpenCaseLister: when a
// supervisor's or handler's last assignment ends, the people service lists
// the open cases they hold so that they can be handed to someone else.
func (t *Tracker) HandoverLister() people.OpenCaseLister {
	return people.OpenCaseListerFunc(func(ctx context.Context, personID string) ([]people.HandoverCase, error) {
		list, err := t.OpenCasesHeldBy(ctx, personID)
		if err != nil {
			return nil, err
		}
		out := make([]people.HandoverCase, 0, len(list))
		for _, c := range list {
			out = append(out, people.HandoverCase{CaseID: c.ID, NodeCode: c.NodeCode, Status: string(c.State), Title: c.Title()})
		}
		return out, nil
	})
}

// Title is a one-line description of the case for lists.
func (c *Case) Title() string {
	title := strings.ReplaceAll(c.Category, "_", " ")
	if d := strings.Join(strings.Fields(c.Description), " "); d != "" {
		if utf8.RuneCountInString(d) > 60 {
			d = string([]rune(d)[:60]) + "…"
		}
		title += ": " + d
	}
	return title
}
