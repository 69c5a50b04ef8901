import { call } from "../api/client";
import type { v1Case } from "../api/generated";
import { clear, h } from "../dom";
import { boardStates, stateName, t } from "../i18n";
import { heading } from "./common";

type Filter = "all" | "overdue" | "escalated" | "mine";

/** listAllCases pages through ListCases (at most a few thousand cases). */
export async function listAllCases(req: { overdueOnly?: boolean; escalatedOnly?: boolean; nodeCode?: string }, max = 2000): Promise<v1Case[]> {
  const out: v1Case[] = [];
  let pageToken = "";
  do {
    const r = await call("CaseService_ListCases", { ...req, page: { pageSize: 500, pageToken } });
    out.push(...(r.cases ?? []));
    pageToken = r.nextPageToken ?? "";
  } while (pageToken && out.length < max);
  return out;
}

/**
 * renderBoard is the supervisor's case board: one column per state, with
 * overdue, escalated and mine filters. The server decides which cases the
 * user may see; the board only groups them.
 */
export async function renderBoard(main: HTMLElement, personId: string, filter: Filter = "all"): Promise<void> {
  const cases = await listAllCases({ overdueOnly: filter === "overdue", escalatedOnly: filter === "escalated" });
  const shown = filter === "mine" ? cases.filter((c) => c.supervisorId === personId || c.handlerId === personId || c.reporterId === personId) : cases;
  clear(main);
  const filters = h("div", { role: "group", "aria-label": t("board") });
  for (const [f, label] of [
    ["all", t("allCases")],
    ["overdue", t("overdue")],
    ["escalated", t("escalated")],
    ["mine", t("mine")],
  ] as const) {
    filters.append(h("button", { type: "button", "aria-pressed": String(f === filter), onclick: () => void renderBoard(main, personId, f) }, label));
  }
  const columns = h("div", { class: "board" });
  for (const s of boardStates) {
    const inState = shown.filter((c) => c.state === s);
    const list = h("ul", { "aria-label": stateName(s) });
    for (const c of inState) {
      list.append(
        h(
          "li",
          { class: c.overdue ? "overdue" : undefined },
          h("a", { href: `#/cases/${encodeURIComponent(c.id ?? "")}` }, `${c.category ?? ""} · ${c.villageCode ?? ""}`),
          c.overdue ? h("span", { class: "tag" }, t("overdue")) : null,
          c.escalated ? h("span", { class: "tag" }, t("escalated")) : null,
        ),
      );
    }
    columns.append(h("section", { "aria-label": stateName(s) }, h("h2", {}, `${stateName(s)} (${inState.length})`), list));
  }
  const chart = h("div", { class: "chart", role: "img", "aria-label": t("byState") });
  main.append(heading(t("board")), filters, h("p", {}, shown.length === 0 ? t("noCases") : ""), columns, chart);
  main.dataset.rendered = String(performance.now());
  // The chart is extra: it loads after the board is on screen.
  void import("../chart").then(({ barChart }) =>
    barChart(
      chart,
      t("byState"),
      boardStates.map((s) => stateName(s)),
      boardStates.map((s) => shown.filter((c) => c.state === s).length),
    ),
  );
}
